"""Only the licence field lives here; everything else is in pyproject.toml.

setuptools >= 77 (Python >= 3.9) writes the SPDX ``License-Expression``; the last setuptools for
Python 3.8 (JetPack 5) rejects ``project.license = "..."`` in pyproject.toml and takes the plain
``License`` field instead, so a source or editable install works on both.
"""

import setuptools

_SPDX = "Apache-2.0"

if int(setuptools.__version__.split(".")[0]) >= 77:
    setuptools.setup(license_expression=_SPDX)
else:
    setuptools.setup(license=_SPDX)
