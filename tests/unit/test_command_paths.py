"""The API's command paths: one per command, each carried by the update named after it."""

from __future__ import annotations

from typing import get_args

from api.commands import COMMAND_PATHS
from models.domain.commands import Command


def test_every_command_has_one_path_and_its_own_update_when_the_api_registers_them() -> None:
    union, *_ = get_args(Command)
    tags = {model.model_fields["command"].default for model in get_args(union)}
    assert {model for model, _update in COMMAND_PATHS.values()} == set(get_args(union))
    for path, (model, update) in COMMAND_PATHS.items():
        tag = model.model_fields["command"].default
        assert update == tag, path
        assert path == tag.replace("_", "-")
    assert {update for _model, update in COMMAND_PATHS.values()} == tags
