import pytest

from lsa_edge import ATTRIBUTES, DataError
from lsa_edge.attributes import match_attribute_columns


def test_forty_unique_names_in_celeba_order():
    assert len(ATTRIBUTES) == 40 == len(set(ATTRIBUTES))
    assert ATTRIBUTES[0] == "5_o_Clock_Shadow" and ATTRIBUTES[-1] == "Young" and ATTRIBUTES[31] == "Smiling"


def test_reordered_columns_are_mapped():
    names = list(reversed(ATTRIBUTES))
    idx = match_attribute_columns(names)
    assert [names[i] for i in idx] == list(ATTRIBUTES)


def test_misspelled_name_is_named_with_a_suggestion():
    names = list(ATTRIBUTES)
    names[15] = "Eyeglases"
    with pytest.raises(DataError) as e:
        match_attribute_columns(names, "attributes.csv")
    msg = str(e.value)
    assert "'Eyeglases'" in msg and "did you mean 'Eyeglasses'" in msg and "missing 'Eyeglasses'" in msg


def test_missing_and_duplicated_names():
    with pytest.raises(DataError, match="missing 'Young'"):
        match_attribute_columns(ATTRIBUTES[:-1])
    with pytest.raises(DataError, match="duplicated 'Male'"):
        match_attribute_columns([*ATTRIBUTES[:-1], "Male"])
