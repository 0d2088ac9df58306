"""One home for each text: every key the code uses has a translation and an icon, and no more."""

from __future__ import annotations

import json
from pathlib import Path
import re

import yaml

from custom_components.mam_guard import binary_sensor, button, const, sensor, switch

ROOT = Path(__file__).resolve().parents[1] / "custom_components" / "mam_guard"
EN = json.loads((ROOT / "translations" / "en.json").read_text())
ICONS = json.loads((ROOT / "icons.json").read_text())
CODE = "".join(path.read_text() for path in ROOT.glob("*.py"))


def descriptions() -> dict[str, set[str]]:
    """Translation keys of every entity description, by platform."""
    sensors = [
        *sensor.ACCOUNT_SENSORS,
        sensor.RATIO_STATUS,
        *sensor.QBT_SENSORS,
        *sensor.EMERGENCY_SENSORS,
        *sensor.RULES_SENSORS,
    ]
    return {
        "sensor": {str(d.translation_key) for d in sensors},
        "binary_sensor": {
            str(d.translation_key)
            for d in (binary_sensor.EMERGENCY_FREEZE, *binary_sensor.EVENT_SENSORS)
        },
        "switch": {str(switch.ENFORCEMENT.translation_key)},
        "button": {str(button.REFRESH_RULES.translation_key)},
    }


def test_entities_have_names_and_icons_and_nothing_more() -> None:
    for platform, keys in descriptions().items():
        assert set(EN["entity"][platform]) == keys, platform
        assert set(ICONS["entity"][platform]) == keys, platform
    assert len(descriptions()["sensor"]) == 18  # SPEC §2 lists 18 sensors


def test_exception_and_issue_keys_match_the_code() -> None:
    used = set(re.findall(r'translation_key="([a-z_]+)"', CODE))
    # Repair issues take their keys from the ISSUE_* constants.
    used |= {value for name, value in vars(const).items() if name.startswith("ISSUE_")}
    entity_keys = set().union(*(set(keys) for keys in EN["entity"].values()))
    assert set(EN["exceptions"]) | set(EN["issues"]) == used - entity_keys


def test_services_are_described_everywhere() -> None:
    declared = set(yaml.safe_load((ROOT / "services.yaml").read_text()))
    assert declared == {
        "release_freeze",
        "trigger_freeze",
        "check_download",
        "get_status",
        "refresh_rules",
    }
    assert set(EN["services"]) == declared
    assert set(ICONS["services"]) == declared
    for name, spec in yaml.safe_load((ROOT / "services.yaml").read_text()).items():
        assert set(spec["fields"]) == set(EN["services"][name]["fields"]), name
