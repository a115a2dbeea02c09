import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError
from ansible_collections.virtforge.libvirt.plugins.module_utils._validate import (
    check_name, check_positive_int, confine_path, parse_size, xml_size_to_bytes)


@pytest.mark.parametrize("name", ["web01", "db_1", "a.b-c", "x+y:z", "_tmp"])
def test_good_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name,fragment", [
    ("a/b", "'/'"), ("..", "relative path"), (".", "relative path"), ("a<b", "'<'"), ("a\nb", "'\\n'"),
    ("", "non-empty"), ("-x", "not allowed"), ("x" * 65, "longer than"), ("a b", "' '"),
])
def test_bad_names_name_the_option(name, fragment):
    with pytest.raises(VirtforgeError) as err:
        check_name(name, option="domains[2].name")
    assert err.value.message.startswith("domains[2].name: ")
    assert fragment in err.value.message


@pytest.mark.parametrize("value,expected", [
    (1024, 1024), ("1024", 1024), ("1 KiB", 1024), ("512M", 512 * 1024 ** 2), ("2GiB", 2 * 1024 ** 3),
    ("1GB", 10 ** 9), ("1.5G", int(1.5 * 1024 ** 3)), ("3t", 3 * 1024 ** 4),
])
def test_parse_size(value, expected):
    assert parse_size(value, "size") == expected


def test_parse_size_default_unit():
    assert parse_size(512, "memory", default_unit="MiB") == 512 * 1024 ** 2


@pytest.mark.parametrize("value", ["lots", "12 parsecs", True, "-1G", ""])
def test_parse_size_refuses(value):
    with pytest.raises(VirtforgeError) as err:
        parse_size(value, "memory")
    assert err.value.option == "memory"


def test_parse_size_minimum():
    with pytest.raises(VirtforgeError, match="below the minimum"):
        parse_size("1K", "memory", minimum=1024 ** 2)


def test_xml_size():
    assert xml_size_to_bytes("1048576", "KiB") == 1024 ** 3
    assert xml_size_to_bytes("1", None) == 1024
    with pytest.raises(ValueError):
        xml_size_to_bytes("1", "furlongs")


@pytest.mark.parametrize("value", [0, -1, "2", 1.5, True])
def test_positive_int_refuses(value):
    with pytest.raises(VirtforgeError):
        check_positive_int(value, "vcpus")


def test_positive_int_max():
    assert check_positive_int(4, "vcpus", maximum=4) == 4
    with pytest.raises(VirtforgeError, match="at most 4"):
        check_positive_int(5, "vcpus", maximum=4)


def test_confine_path(tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    assert confine_path("a.qcow2", str(pool), "name") == str(pool / "a.qcow2")
    assert confine_path(str(pool / "b"), str(pool), "name") == str(pool / "b")
    for bad in ("../x", str(tmp_path / "x"), "a/../../x"):
        with pytest.raises(VirtforgeError, match="outside"):
            confine_path(bad, str(pool), "name")
    (pool / "link").symlink_to(tmp_path)
    with pytest.raises(VirtforgeError, match="outside"):
        confine_path("link/x", str(pool), "name")
