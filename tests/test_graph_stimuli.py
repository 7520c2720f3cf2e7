"""graph.stimuli: [sp], its transformations and [database] read against their key tables."""

import logging

import pytest

from n2prune.errors import IniError
from n2prune.graph.builder import build_network, unknown_keys
from n2prune.graph.stimuli import PROVIDER_KEYS, provider_settings, read_database
from n2prune.ini import load_ini
from n2prune.registry import UnknownName, signature_parameters
from n2prune.train.model import Model

NET = "[fc]\nInput=sp\nType=Fc\nNbOutputs=10\n[fc.Target]\n"
SP = "[sp]\nSizeX=4\nSizeY=4\n"


def load(tmp_path, text):
    path = tmp_path / "m.ini"
    path.write_text(text)
    return load_ini(path), path


def line_of(text, start):
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(start))


def build_error(tmp_path, text, kind=IniError):
    ini, path = load(tmp_path, text)
    with pytest.raises(kind) as info:
        build_network(ini, 0, 1)
    return str(info.value), path


def test_every_provider_setting_is_a_key():
    assert sorted(key.attr for key in PROVIDER_KEYS) == sorted(signature_parameters(provider_settings))
    assert not any(key.required for key in PROVIDER_KEYS)  # SizeX/SizeY: unless Size


def test_size_wins_and_the_separate_sizes_are_not_used(tmp_path):
    ini, _ = load(tmp_path, "[sp]\nSize=6 5 2\nSizeX=9\nBatchSize=3\nCachePath=x\n" + NET)
    _, provider, ctx = build_network(ini, 0, 1)
    assert (provider.size, provider.batch_size) == ((5, 6, 2), 3)
    [message] = unknown_keys(ini, ctx)
    assert "[sp] SizeX: key not used" in message


@pytest.mark.parametrize("sp, key, words", [
    ("[sp]\nSizeX=4\n", "[sp]", "[sp] SizeY: missing required key (or write Size=W H [C])"),
    ("[sp]\nSize=4 4 1 1\n", "Size", "[sp] Size: expected 'width height [channels]'"),
    ("[sp]\nSize=4 4\nBatchSize=0\n", "BatchSize", "[sp] BatchSize: must be at least 1"),
])
def test_provider_errors_land_on_their_key(tmp_path, sp, key, words):
    message, path = build_error(tmp_path, sp + NET)
    assert message.startswith(f"{path}:{line_of(sp, key)} {words}")


def test_unknown_transformation_has_the_registry_wording(tmp_path):
    text = SP + "[sp.Transformation]\nType=PadCrop\nWidth=4\nHeight=4\n" + NET
    message, path = build_error(tmp_path, text, UnknownName)
    assert message.startswith(f"unknown Type=PadCrop in [sp.Transformation] "
                              f"({path}:{line_of(text, 'Type=PadCrop')}); known: Rescale")


def test_transformation_keys_from_the_table(tmp_path):
    text = (SP + "[sp.OnTheFlyTransformation]\nType=FlipTransformation\nRandomVerticalFlip=1\n"
            "[sp.Transformation]\nType=RescaleTransformation\nWidth=4\nHeight=4\nResizeToFit=0\n"
            + NET)
    ini, _ = load(tmp_path, text)
    _, provider, _ = build_network(ini, 0, 1)
    [rescale], [flip] = provider.pipeline("learn")
    assert (rescale.width, rescale.height, rescale.resize_to_fit) == (4, 4, False)
    assert rescale.keep_aspect_ratio is False  # the constructor's default
    assert flip.random_vertical and not flip.horizontal


def test_missing_transformation_key_is_reported_at_its_type(tmp_path):
    text = SP + "[sp.Transformation]\nType=RescaleTransformation\nWidth=4\n" + NET
    message, path = build_error(tmp_path, text)
    assert message == (f"{path}:{line_of(text, 'Type=Rescale')} [sp.Transformation] Type: "
                       "missing required key Height")


@pytest.mark.parametrize("keys, blamed, words", [
    ("Validation=1.5\n", "Validation", "expected a fraction in [0, 1), got 1.5"),
    ("Validation=0.2\nLearn=0.5\n", "Learn", "only Learn = 1 - Validation is supported"),
])
def test_refused_database_values_land_on_their_key(tmp_path, keys, blamed, words):
    text = "[database]\nType=MNIST_IDX_Database\n" + keys + SP + NET
    ini, path = load(tmp_path, text)
    with pytest.raises(IniError) as info:
        read_database(ini, {}, 0)
    assert str(info.value) == f"{path}:{line_of(text, blamed)} [database] {blamed}: {words}"


def test_database_keys_are_read(tmp_path):
    text = "[database]\nType=MNIST_IDX_Database\nValidation=0.5\nRandomPartitioning=0\n" + SP + NET
    ini, _ = load(tmp_path, text)
    database = read_database(ini, {}, 0)
    assert database.size("validation") == 30000
    assert database.indices("validation")[0] == 30000  # not partitioned at random


def test_unknown_database_type_leaves_its_keys_unjudged(tmp_path, caplog):
    text = "[database]\nType=Custom_Database\nValidation=0.1\nDataPath=x\n" + SP + NET
    ini, path = load(tmp_path, text)
    with pytest.raises(UnknownName, match=r"^unknown Type=Custom_Database in \[database\] "
                                          rf"\({path}:2\); (did you mean \S+\? )?known: MNIST_IDX_Database,"):
        read_database(ini, {}, 0)
    with caplog.at_level(logging.INFO, logger="n2prune"):
        assert Model(path, need_data=False, strict=True).database is None
    assert "unknown Type=Custom_Database" in caplog.text
