"""One home for each text: every key the code uses has a translation and an icon, and no more."""

from __future__ import annotations

import ast
from collections.abc import Iterator
import json
from pathlib import Path
import re
import string
from typing import Any

from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import section
from homeassistant.helpers import config_validation as cv, selector, translation
import probatio as vol
from probatio.humanize import humanize_error
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import yaml

from custom_components.mam_guard import binary_sensor, button, const, sensor, switch
from custom_components.mam_guard.config_flow import OPTION_FIELDS
from custom_components.mam_guard.const import DOMAIN

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
        sensor.PROTECTION,
        *sensor.ECONOMY_SENSORS,
        *sensor.RULES_SENSORS,
    ]
    return {
        "sensor": {str(d.translation_key) for d in sensors},
        "binary_sensor": {
            str(d.translation_key)
            for d in (
                binary_sensor.EMERGENCY_FREEZE,
                binary_sensor.QBITTORRENT_CONNECTED,
                *binary_sensor.EVENT_SENSORS,
            )
        },
        "switch": {str(switch.ENFORCEMENT.translation_key)},
        "button": {
            str(d.translation_key)
            for d in (button.REFRESH_RULES, *button.EMERGENCY_BUTTONS, button.BUY_VIP)
        },
    }


def test_entities_have_names_and_icons_and_nothing_more() -> None:
    for platform, keys in descriptions().items():
        assert set(EN["entity"][platform]) == keys, platform
        assert set(ICONS["entity"][platform]) == keys, platform
    assert len(descriptions()["sensor"]) == 24  # SPEC §2 (18), protection, §10 (4), §11 (1)


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
        "buy_vip",
        "buy_upload_credit",
    }
    assert set(EN["services"]) == declared
    assert set(ICONS["services"]) == declared
    for name, spec in yaml.safe_load((ROOT / "services.yaml").read_text()).items():
        assert set(spec["fields"]) == set(EN["services"][name]["fields"]), name


# --- Home Assistant's own translation rules ------------------------------------------------------
#
# hassfest (script/hassfest/translations.py in home-assistant/core) is not in the homeassistant
# wheel, so its rules for a custom integration's translations/en.json are reproduced here with
# the validators HA does ship (homeassistant.helpers.config_validation): the strings schema
# (which key may sit where), translation keys, no HTML, no leading or trailing spaces, no URLs,
# no combined references, placeholders that are identifiers and not in single quotes. On top:
# what the frontend's ICU message parser (@formatjs, not Python) rejects or silently changes, the
# placeholders each call in the code supplies, and lowercase snake keys everywhere.

RE_TRANSLATION_KEY = re.compile(r"^(?!.+[_-]{2})(?![_-])[a-z0-9-_]+(?<![_-])$")
RE_COMBINED_REFERENCE = re.compile(r"(.+\[%)|(%\].+)")
RE_PLACEHOLDER_IN_SINGLE_QUOTES = re.compile(r"'{\w+}'")
RE_URL = re.compile(
    r"(((ftp|ftps|scp|http|https|mqtt|mqtts|socket|socks5):\/\/|www\.)"
    r"[a-z0-9]+([\-\.]{1}[a-z0-9]+)*\.[a-z]{2,5}(:[0-9]{1,5})?(\/.*)?)",
    re.IGNORECASE,
)
RE_SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*$")


def translation_key_validator(value: str) -> str:
    """hassfest: a key is [a-z0-9-_]+, no doubled or edge hyphen/underscore."""
    if RE_TRANSLATION_KEY.match(value) is None:
        raise vol.Invalid(
            f"Invalid translation key '{value}', need to be [a-z0-9-_]+ and"
            " cannot start or end with a hyphen or underscore."
        )
    return value


def validate_translation_value(value: Any, allow_placeholders: bool = True) -> str:
    """hassfest's checks of one text."""
    string_value = cv.string_with_no_html(value)
    if RE_PLACEHOLDER_IN_SINGLE_QUOTES.search(string_value):
        raise vol.Invalid("the string should not contain placeholders inside single quotes")
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(string_value) if field]
    except ValueError as err:  # hassfest crashes here; HA's loader logs and drops the string
        raise vol.Invalid(f"the string has unbalanced braces: {err}") from err
    for field in fields:
        if not allow_placeholders:
            raise vol.Invalid("placeholders are not supported in this value")
        if not field.isidentifier():
            raise vol.Invalid("placeholders must be valid identifiers ([a-zA-Z_][a-zA-Z0-9_]*)")
    if RE_COMBINED_REFERENCE.search(string_value):
        raise vol.Invalid("the string should not contain combined translations")
    if string_value != string_value.strip():
        raise vol.Invalid("the string should not contain leading or trailing spaces")
    if RE_URL.search(string_value):
        raise vol.Invalid(
            "the string should not contain URLs, please use description placeholders instead"
        )
    return string_value


def text(value: Any) -> str:
    return validate_translation_value(value)


def plain_text(value: Any) -> str:
    return validate_translation_value(value, allow_placeholders=False)


def data_entry_schema(*, subentry_flow: bool = False) -> Any:
    """hassfest's gen_data_entry_schema for a custom integration (no config.title)."""
    fields = {str: text}
    schema: dict[Any, Any] = {
        vol.Optional("flow_title"): text,
        vol.Required("step"): {
            str: {
                vol.Optional("title"): text,
                vol.Optional("description"): text,
                vol.Optional("data"): fields,
                vol.Optional("data_description"): fields,
                vol.Optional("menu_options"): fields,
                vol.Optional("menu_option_descriptions"): fields,
                vol.Optional("submit"): text,
                vol.Optional("sections"): {
                    str: {
                        vol.Optional("data"): fields,
                        vol.Optional("data_description"): fields,
                        vol.Optional("description"): text,
                        vol.Optional("name"): text,
                    }
                },
            }
        },
        vol.Optional("error"): fields,
        vol.Optional("abort"): fields,
        vol.Optional("progress"): fields,
        vol.Optional("create_entry"): fields,
    }
    if subentry_flow:
        schema[vol.Required("entry_type")] = text
        schema[vol.Required("initiate_flow")] = {vol.Required("user"): text, str: text}
    else:
        schema[vol.Optional("initiate_flow")] = {vol.Required("user"): text}

    def data_description_in_data(value: dict[str, Any]) -> dict[str, Any]:
        """hassfest: every data_description has its data label (here in sections too)."""
        for step in value["step"].values():
            for part in (step, *step.get("sections", {}).values()):
                for key in part.get("data_description", {}):
                    if key not in part.get("data", {}):
                        raise vol.Invalid(f"data_description key {key} is not in data")
        return value

    return vol.All(vol.Schema(schema), data_description_in_data)


def slug_keys(value_schema: Any, slug: Any = translation_key_validator) -> Any:
    return cv.schema_with_slug_keys(value_schema, slug_validator=slug)


ISSUES_SCHEMA = {
    str: vol.All(
        cv.has_at_least_one_key("description", "fix_flow"),
        vol.Schema(
            {
                vol.Required("title"): text,
                vol.Exclusive("description", "fixable"): text,
                vol.Exclusive("fix_flow", "fixable"): data_entry_schema(),
            }
        ),
    )
}
SERVICE_FIELDS = slug_keys(
    {vol.Required("name"): str, vol.Required("description"): text, vol.Optional("example"): text}
)
STATES = slug_keys(plain_text)
STRINGS_SCHEMA = vol.Schema(
    {
        vol.Optional("title"): text,
        vol.Optional("config"): data_entry_schema(),
        vol.Optional("config_subentries"): slug_keys(
            data_entry_schema(subentry_flow=True), vol.Any("_", cv.slug)
        ),
        vol.Optional("options"): data_entry_schema(),
        vol.Optional("selector"): slug_keys(
            {
                vol.Optional("choices"): slug_keys(text),
                vol.Optional("options"): slug_keys(text),
                vol.Optional("unit_of_measurement"): slug_keys(text),
                vol.Optional("fields"): vol.Any(
                    slug_keys(str),
                    slug_keys({vol.Required("name"): str, vol.Required("description"): text}),
                ),
            },
            vol.Any("_", cv.slug),
        ),
        vol.Optional("device_automation"): {
            vol.Optional(key): {str: text}
            for key in (
                "action_type",
                "condition_type",
                "trigger_type",
                "trigger_subtype",
                "extra_fields",
                "extra_fields_descriptions",
            )
        },
        vol.Optional("system_health"): {vol.Optional("info"): slug_keys(text)},
        vol.Optional("application_credentials"): {vol.Optional("description"): text},
        vol.Optional("issues"): ISSUES_SCHEMA,
        vol.Optional("entity_component"): slug_keys(
            {
                vol.Optional("name"): str,
                vol.Optional("state"): STATES,
                vol.Optional("state_attributes"): slug_keys(
                    {vol.Optional("name"): str, vol.Optional("state"): STATES}
                ),
            },
            vol.Any("_", cv.slug),
        ),
        vol.Optional("device"): slug_keys({vol.Optional("name"): text}),
        vol.Optional("entity"): slug_keys(
            slug_keys(
                {
                    vol.Optional("name"): text,
                    vol.Optional("state"): STATES,
                    vol.Optional("state_attributes"): slug_keys(
                        {vol.Optional("name"): plain_text, vol.Optional("state"): STATES}
                    ),
                    vol.Optional("unit_of_measurement"): plain_text,
                }
            ),
            cv.slug,
        ),
        vol.Optional("exceptions"): slug_keys({vol.Optional("message"): text}, cv.slug),
        vol.Optional("services"): slug_keys(
            {
                vol.Required("name"): text,
                vol.Required("description"): text,
                vol.Optional("fields"): SERVICE_FIELDS,
                vol.Optional("sections"): slug_keys(
                    {vol.Required("name"): str, vol.Optional("description"): text}
                ),
            }
        ),
        vol.Optional("common"): vol.Schema({cv.slug: text}),
    }
)


def frontend_format_errors(value: str) -> list[str]:
    """What the frontend's ICU parser (@formatjs/icu-messageformat-parser) breaks on.

    ``<letter`` or ``</`` opens a tag ("Translation error: UNCLOSED_TAG"); an apostrophe before
    ``{ } < >`` starts a quoted literal (the apostrophe vanishes and the placeholder is shown
    raw); a brace opens an argument, which must be a plain ``{name}`` and closed (HA formats
    backend texts with str.format, so the ICU plural/select forms are out too).
    """
    errors: list[str] = []
    i = 0
    while i < len(value):
        char, following = value[i], value[i + 1 : i + 2]
        if char == "'" and following and following in "{}<>":
            errors.append(f"apostrophe before {following!r} at {i} quotes the text after it")
        elif char == "<" and (following.isalpha() or following == "/"):
            errors.append(f"{value[i : i + 12]!r}... at {i} is parsed as a tag: UNCLOSED_TAG")
        elif char == "{":
            end = value.find("}", i)
            if end == -1:
                errors.append(f"unclosed brace at {i}")
                break
            if not value[i + 1 : end].isidentifier():
                errors.append(f"{value[i : end + 1]!r} at {i} is not a {{name}} argument")
            i = end
        elif char == "}":
            errors.append(f"unmatched closing brace at {i}")
        i += 1
    return errors


def all_strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every text of a translation file, with its dotted path."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from all_strings(value, f"{path}.{key}" if path else key)
    else:
        yield path, node


def all_keys(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key
            yield from all_keys(value, f"{path}.{key}" if path else key)


def placeholders(value: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(value) if field}


def hassfest_errors(strings: dict[str, Any]) -> list[str]:
    """hassfest's verdict on a strings file, one line per problem, plus the frontend's."""
    errors: list[str] = []
    try:
        STRINGS_SCHEMA(strings)
    except vol.Invalid as err:
        errors.extend(humanize_error(strings, err).splitlines())
    errors.extend(
        f"{path}: {problem}"
        for path, value in all_strings(strings)
        for problem in frontend_format_errors(value)
    )
    errors.extend(
        f"{path}: key {key!r} is not lowercase snake_case"
        for path, key in all_keys(strings)
        if not RE_SNAKE.match(key)
    )
    # Only core's build resolves [%key:...%] references; a custom integration's file is shown as is.
    errors.extend(
        f"{path}: a [%key:...%] reference is shown raw in a custom integration"
        for path, value in all_strings(strings)
        if "[%key:" in value
    )
    return errors


def test_en_json_passes_home_assistants_translation_rules() -> None:
    """hassfest's schema and text rules, the frontend's ICU parser, snake_case keys."""
    errors = hassfest_errors(json.loads((ROOT / "translations" / "en.json").read_text()))
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    ("strings", "expected"),
    [
        ({"config": {"step": {"user": {"description": "paste mam_id=<value>"}}}}, "HTML"),
        ({"config": {"step": {"user": {"description": "a {b"}}}}, "unbalanced braces"),
        ({"config": {"step": {"user": {"description": "a }"}}}}, "unbalanced braces"),
        ({"config": {"step": {"user": {"description": "'{title}'"}}}}, "single quotes"),
        ({"config": {"step": {"user": {"description": "{0}"}}}}, "valid identifiers"),
        ({"config": {"step": {"user": {"description": "see www.example.org"}}}}, "URLs"),
        ({"config": {"step": {"user": {"description": "trailing "}}}}, "trailing spaces"),
        ({"config": {"step": {"user": {"descripton": "x"}}}}, "not a valid option"),
        ({"config": {"step": {"user": {"data_description": {"a": "x"}}}}}, "is not in data"),
        (
            {"config": {"step": {"s": {"sections": {"x": {"data_description": {"a": "b"}}}}}}},
            "data",
        ),
        ({"config": {"title": "MAM Guard"}}, "not a valid option"),
        ({"entity": {"sensor": {"x": {"state": {"on": "{n} on"}}}}}, "not supported"),
        ({"entity": {"sensor": {"Ratio": {"name": "x"}}}}, "Invalid translation key"),
        ({"selector": {"rules_page": {"options": {"rules.php": "Rules"}}}}, "translation key"),
        ({"issues": {"x": {"title": "t"}}}, "at least one"),
        ({"issues": {"x": {"title": "t", "description": "d", "fix_flow": {}}}}, "fixable"),
        ({"exceptions": {"x": {"mesage": "m"}}}, "not a valid option"),
        ({"services": {"x": {"name": "n"}}}, "required key not provided"),
        ({"services": {"x": {"name": "n", "description": "d", "fields": {"F": {}}}}}, "key"),
        ({"common": {"x": "<b>bold</b>"}}, "HTML"),
        ({"common": {"x": "it's {n"}}, "unclosed brace"),
        ({"common": {"x": "'<' sign"}}, "quotes the text"),
        ({"common": {"x": "a {n, plural, one {x} other {y}}"}}, "not a {name} argument"),
        ({"common": {"x": "</b>"}}, "UNCLOSED_TAG"),
        ({"common": {"x": "bad}"}}, "unmatched closing brace"),
        ({"common": {"fooBar": "x"}}, "snake_case"),
        ({"common": {"x": "[%key:common::config_flow::data::password%]"}}, "shown raw"),
    ],
)
def test_the_rules_catch_what_they_should(strings: dict[str, Any], expected: str) -> None:
    """Each rule above rejects what hassfest or the frontend rejects."""
    errors = hassfest_errors(strings)
    assert any(expected in error for error in errors), errors


def test_the_rules_accept_what_home_assistant_accepts() -> None:
    ok = {
        "config": {
            "step": {
                "user": {
                    "title": "Set up",
                    "description": "The {title} account < 5 GB, qBittorrent's URL",
                    "data": {"a": "A"},
                    "data_description": {"a": "Like http://127.0.0.1:8080."},
                    "sections": {"s": {"name": "S", "data": {"b": "B"}}},
                }
            },
            "error": {"x": "y"},
            "abort": {"x": "y"},
        },
        "selector": {"rules_page": {"options": {"forum_18": "News forum (f/b/18)"}}},
        "issues": {"x": {"title": "t", "fix_flow": {"step": {"confirm": {"title": "c"}}}}},
    }
    assert hassfest_errors(ok) == []


# --- The placeholders each call supplies ---------------------------------------------------------


def _module_constants(trees: list[ast.Module]) -> dict[str, set[str]]:
    """Module-level names bound to a string, or to a dict or tuple of them (their values)."""
    names: dict[str, set[str]] = {}
    for _ in range(3):  # a constant may name another one
        for tree in trees:
            for node in tree.body:
                target, value = _assignment(node)
                if target is not None and (resolved := _resolve(value, names)) is not None:
                    names[target] = resolved
    return names


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id, node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    return None, None


def _resolve(node: ast.expr | None, names: dict[str, set[str]]) -> set[str] | None:
    """The strings an expression can be, or None when that cannot be told statically."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        return names.get(node.attr)
    if isinstance(node, ast.Subscript):
        return _resolve(node.value, names)
    if isinstance(node, ast.IfExp):
        body, orelse = _resolve(node.body, names), _resolve(node.orelse, names)
        return None if body is None or orelse is None else body | orelse
    parts: list[ast.expr | None] = []
    if isinstance(node, ast.Dict):
        parts = list(node.values)
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        parts = list(node.elts)
    resolved = [_resolve(part, names) for part in parts]
    if not parts or any(part is None for part in resolved):
        return None
    return set().union(*(part for part in resolved if part is not None))


def _supplied(call: ast.Call, keyword: str) -> tuple[set[str], bool] | None:
    """The placeholder names a call passes, and whether that is all of them (no ** spread)."""
    value = next((kw.value for kw in call.keywords if kw.arg == keyword), None)
    if value is None:
        return set(), True
    if isinstance(value, ast.Dict):
        keys = {k.value for k in value.keys if isinstance(k, ast.Constant)}
        return keys, len(keys) == len(value.keys)
    return None  # built elsewhere: only known at run time


def translated_calls() -> list[tuple[str, str, set[str], bool, str]]:
    """(section, key, supplied placeholders, complete, where) of each exception and issue."""
    files = sorted(ROOT.rglob("*.py"))
    trees = [ast.parse(path.read_text()) for path in files]
    names = _module_constants(trees)
    calls = []
    for path, tree in zip(files, trees, strict=True):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func.attr if isinstance(node.func, ast.Attribute) else ""
            func = func or (node.func.id if isinstance(node.func, ast.Name) else "")
            kwargs = {kw.arg for kw in node.keywords}
            if func == "async_create_issue":
                section = "issues"
            elif "translation_domain" in kwargs:
                section = "exceptions"
            else:
                continue
            key_node = next((kw.value for kw in node.keywords if kw.arg == "translation_key"), None)
            keys = _resolve(key_node, names)
            supplied = _supplied(node, "translation_placeholders")
            if keys is None or supplied is None:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            calls.extend((section, key, *supplied, where) for key in sorted(keys))
    return calls


def test_every_placeholder_is_supplied_by_the_code() -> None:
    """Like core's check_translations: a {name} the call does not pass is shown raw."""
    strings = json.loads((ROOT / "translations" / "en.json").read_text())
    calls = translated_calls()
    assert {(section, key) for section, key, *_ in calls} >= {
        ("exceptions", "mam_rate_limited"),
        ("issues", "enforcement_breaker"),
    }  # the scan finds the calls
    problems = []
    for part, key, supplied, complete, where in calls:
        entry = strings.get(part, {}).get(key)
        if entry is None:
            problems.append(f"{where}: {part}.{key} has no text")
            continue
        texts = [entry["message"]] if part == "exceptions" else list(entry.values())
        needed = set().union(*(placeholders(t) for t in texts if isinstance(t, str)))
        if complete and (missing := needed - supplied):
            problems.append(f"{where}: {part}.{key} needs {sorted(missing)}, gets {supplied}")
    assert not problems, "\n".join(problems)


# --- The forms, as Home Assistant loads their texts ----------------------------------------------


def _fields(schema: Any) -> Iterator[tuple[str | None, str, Any]]:
    """(section or None, key, validator) of every field of a form, sections included."""
    for marker, value in schema.schema.items():
        if isinstance(value, section):
            for inner, inner_value in value.schema.schema.items():
                yield str(marker), str(inner), inner_value
        else:
            yield None, str(marker), value


def form_text_problems(result: Any, flat: dict[str, str], prefix: str) -> list[str]:
    """The keys the frontend looks up for this form and would not find (HA's flattened keys)."""
    step = f"{prefix}.step.{result['step_id']}"
    wanted: list[str] = []
    for sect, key, validator in _fields(result["data_schema"]):
        base = f"{step}.sections.{sect}" if sect else step
        wanted += [f"{base}.name"] if sect else []
        wanted += [f"{base}.data.{key}", f"{base}.data_description.{key}"]
        config = validator.config if isinstance(validator, selector.Selector) else {}
        tk = f"component.{DOMAIN}.selector.{config.get('translation_key')}"
        if config.get("translation_key") and isinstance(validator, selector.SelectSelector):
            wanted += [f"{tk}.options.{option}" for option in config["options"]]
        if config.get("translation_key") and (unit := config.get("unit_of_measurement")):
            wanted.append(f"{tk}.unit_of_measurement.{unit}")
    problems = [f"no text for {key}" for key in dict.fromkeys(wanted) if key not in flat]
    given = set(result.get("description_placeholders") or {})
    problems += [
        f"{key} needs placeholders {sorted(missing)}"
        for key, value in flat.items()
        if key.startswith(f"{step}.") and (missing := placeholders(value) - given)
    ]
    return problems


async def test_every_form_shows_its_texts(hass: HomeAssistant) -> None:
    """Each form of each flow finds its labels, descriptions, selector options and placeholders
    in the translations as Home Assistant loads them (homeassistant.helpers.translation)."""
    flat: dict[str, str] = {}
    for category in ("config", "config_subentries", "options", "selector"):
        flat |= await translation.async_get_translations(hass, "en", category, {DOMAIN})
    client = "config_subentries." + const.SUBENTRY_QBITTORRENT
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="MAM FixtureUser",
        unique_id="100001",
        version=const.CONFIG_ENTRY_VERSION,
        data={const.CONF_MAM_BASE_URL: "x"},
        options=const.DEFAULT_OPTIONS,
        subentries_data=[
            ConfigSubentryData(
                subentry_type=const.SUBENTRY_QBITTORRENT,
                title="qBittorrent",
                data={const.CONF_QBT_URL: "http://127.0.0.1:8080"},
                unique_id=None,
            )
        ],
    )
    entry.add_to_hass(hass)
    [subentry_id] = entry.subentries
    forms = [
        ("config", await hass.config_entries.flow.async_init(DOMAIN, context={"source": "user"})),
        ("config", await entry.start_reauth_flow(hass)),
        ("config", await entry.start_reconfigure_flow(hass)),
        ("options", await hass.config_entries.options.async_init(entry.entry_id)),
        (
            client,
            await hass.config_entries.subentries.async_init(
                (entry.entry_id, const.SUBENTRY_QBITTORRENT), context={"source": "user"}
            ),
        ),
        (client, await entry.start_subentry_reconfigure_flow(hass, subentry_id)),
    ]
    assert [result["step_id"] for _, result in forms] == [
        "user",
        "reauth_confirm",
        "reconfigure",
        "init",
        "user",
        "reconfigure",
    ]
    # The "Add qBittorrent client" button and the client's kind on the entry's page.
    for key in ("initiate_flow.user", "entry_type"):
        assert f"component.{DOMAIN}.{client}.{key}" in flat
    problems = [
        problem
        for category, result in forms
        for problem in form_text_problems(result, flat, f"component.{DOMAIN}.{category}")
    ]
    assert not problems, "\n".join(problems)


def test_every_error_and_abort_of_the_flows_has_a_text() -> None:
    source = (ROOT / "config_flow.py").read_text()
    errors = set(re.findall(r'errors\[[^\]]+\] = "(\w+)"', source))
    aborts = set(re.findall(r'reason="(\w+)"', source))
    # HA's helpers abort with these: _abort_if_unique_id_configured, async_update_reload_and_abort.
    aborts |= {"already_configured", "reauth_successful", "reconfigure_successful"}
    assert errors >= {"invalid_auth", "qbt_url_credentials"}  # the scan finds them
    assert errors <= set(EN["config"]["error"])
    assert aborts <= set(EN["config"]["abort"])
    # The qBittorrent subentry flow shares the qBittorrent checks (and their keys) with the
    # user step; it never touches MAM, and ends with async_update_and_abort.
    client = EN["config_subentries"][const.SUBENTRY_QBITTORRENT]
    qbt_errors = {error for error in errors if error.startswith("qbt_")} | {"unknown"}
    assert set(client["error"]) == qbt_errors
    assert set(client["abort"]) == {"reconfigure_successful"}
    # The options form's errors are invalid_<option> (config_flow.OptionField.to_store).
    assert "invalid_rules_refresh_time" in EN["options"]["error"]
    assert set(EN["options"]["error"]) <= {f"invalid_{key}" for key in OPTION_FIELDS}
