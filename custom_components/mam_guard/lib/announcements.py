"""Which site events an announcement announces: clause by clause, with negation, tense and scope.

Pure functions, no Home Assistant import, nothing raises. :func:`read_events` takes the text of
one announcement (a news-ticker item or an update-notes entry) and returns the site events it
announces, each with its announced start and end (:mod:`.event_dates`).

**What counts as a site event.** A temporary change that applies by itself to every member's
torrents, without the member doing or buying anything:

* ``freeleech``: downloads do not count against the ratio, for all torrents or a whole category
  ("site-wide freeleech", "Christmas freeleech until Jan 2!", "all ebooks are freeleech until
  Monday", "downloading will not affect your share ratio", neutral leech);
* ``bonus``: seeding earns more bonus points ("2x bonus points", "BP x3 until Sunday", "seedbonus
  doubled this week", "bonus point event");
* ``multiplier``: uploads count more ("double upload", "upload counts twice", "+50% upload",
  "doubleseed").

Not site events: anything for a subset of members (VIP-only, donors, a class, new members,
winners, personal freeleech, wedges, tokens) or of torrents (staff picks, freeleech of the
week, book clubs, new or contest uploads, torrents over a size, "this torrent"); offers to buy
or donate ("3x all donation credits", wedges half price, "redeem sitewide freeleech with
seedbonus"); permanent policy and habits ("from now on", "automatically", "weekly", "every
Friday"); definitions and hypotheticals ("X means ...", "during a 2x upload event ...", "if
...", "sometimes"); questions, polls and discussions; and what is negated ("bonus points will
NOT be doubled", "no freeleech this weekend") or over ("the freeleech weekend has ended",
"cancelled"). A freeleech named without anything that makes it an event (scope, event word,
"is now", a date, a holiday) is only a word: the menu's "Freeleech", "freeleech torrents do not
count ...".

**How.** The text is normalised (typos and variants of the key words are mapped to one form by
a bounded edit distance, "free-leach" and "freelaech" both read "freeleech"), cut into clauses
(sentences, ";", dashes, "but"), and each clause searched for mentions. A mention's negation,
tense and scope are read in its own stretch of the clause (up to the neighbouring mention), so
one clause never vetoes another ("the freeleech period is over; the upload bonus runs until
Friday" keeps the upload bonus). Dates come from the mention's clause, else from the clauses
that follow it without a mention of their own. Cost is linear in the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import lru_cache
import re
from typing import Literal
import unicodedata

from .event_dates import Period, find_period

EventType = Literal["freeleech", "bonus", "multiplier"]
EVENT_TYPES: tuple[EventType, ...] = ("freeleech", "bonus", "multiplier")


@dataclass(frozen=True)
class Finding:
    """One announced site event: its type, and its announced start and end (aware or None)."""

    event_type: EventType
    start: datetime | None
    end: datetime | None


# --- normalisation -----------------------------------------------------------------------------

# Canonical forms that typos and variants are mapped to (bounded edit distance, see _fuzzy).
_FUZZY_WORDS = (
    "freeleech", "freeleeching", "sitewide", "seedbonus", "upload", "uploads", "uploaded",
    "download", "downloads", "downloaded", "downloading", "double", "doubled", "triple",
    "tripled", "points", "bonus", "weekend", "multiplier", "everything", "everyone", "extended",
    "cancelled", "postponed", "doubleseed", "global",
)  # fmt: skip
_EXACT = {
    "freeleeches": "freeleech", "freeleeched": "freeleech", "freeleeching": "freeleech",
    "canceled": "cancelled", "cancelled": "cancelled", "uploads": "upload", "uploaded": "upload",
    "uploading": "upload", "downloads": "download", "downloaded": "download",
    "downloading": "download", "neutralleech": "neutralleech", "dbl": "double",
}  # fmt: skip
# Adjacent words that are one word ("free leech", "site-wide", "seed bonus").
_COMPOUNDS = ("freeleech", "sitewide", "seedbonus", "neutralleech", "doubleseed")
_WORD = re.compile(r"[a-z]+")
_JOINER = re.compile(r"[\s-]{1,3}")
_DASHES = str.maketrans(
    {
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2212": "-",
        "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00d7": "x",
        "\u2192": " ", "\u25b7": " ", "\u2022": "\n", "\u00b7": "\n", "\u2014": "\n",
        "\u2015": "\n",
    }
)  # fmt: skip


def _distance_at_most(a: str, b: str, limit: int) -> bool:
    """Whether the optimal-string-alignment distance of ``a`` and ``b`` is at most ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return False
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, 1):
            cost = char_a != char_b
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return False
        previous2, previous = previous, current
    return previous[-1] <= limit


@lru_cache(maxsize=4096)
def _fuzzy(word: str) -> str:
    """The canonical form of ``word``: itself, or the key word it is a typo of.

    Words of five letters allow one swap of neighbours ("bouns"), six or more one edit
    ("freelech", "uplaod"), nine or more two ("frelaech"). Short words are left alone: too many
    real words are one edit away from "bonus" or "fl".
    """
    if word in _EXACT:
        return _EXACT[word]
    if len(word) < 5 or word in _FUZZY_WORDS:
        return word
    for target in _FUZZY_WORDS:
        if target[0] != word[0] and target[:2] != word[1::-1]:
            continue
        if len(word) == 5 or len(target) == 5:  # five letters: only a swap of neighbours
            if sorted(word) == sorted(target) and _distance_at_most(word, target, 1):
                return _EXACT.get(target, target)
            continue
        limit = 2 if len(target) >= 9 and len(word) >= 7 else 1
        if _distance_at_most(word, target, limit):
            return _EXACT.get(target, target)
    return word


def normalise(text: str) -> str:
    """Lower case, one form for dashes, quotes and key words, compounds joined."""
    text = unicodedata.normalize("NFKC", text).translate(_DASHES).lower()
    out: list[str] = []
    last = 0
    words = list(_WORD.finditer(text))
    index = 0
    while index < len(words):
        word = words[index]
        out.append(text[last : word.start()])
        canonical = _fuzzy(word[0])
        last = word.end()
        if index + 1 < len(words):
            following = words[index + 1]
            gap = text[word.end() : following.start()]
            if (
                canonical not in _COMPOUNDS
                and len(following[0]) >= 3
                and _JOINER.fullmatch(gap)
                and (joined := _fuzzy(word[0] + following[0])) in _COMPOUNDS
            ):
                out.append(joined)
                last = following.end()
                index += 2
                continue
        out.append(canonical)
        index += 1
    out.append(text[last:])
    return "".join(out)


# --- clauses -----------------------------------------------------------------------------------

_ABBREVIATIONS = frozenset(
    {"approx", "e.g", "i.e", "etc", "vs", "no", "st", "a.m", "p.m", "mr", "mrs", "dr", "inc"}
    | {"jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}
    | {"mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun"}
)
_CLAUSE_END = re.compile(
    r"[.!?;]+(?=\s|$)|\n+|\s\|\s|\s-\s(?=[a-z])|,?\s+(?:but|however|whereas|although)\s+"
)
_WORD_BEFORE = re.compile(r"([a-z.]+)\.$")


def clauses(text: str) -> list[str]:
    """Sentences and clauses of a normalised text (each stripped, none empty)."""
    parts: list[str] = []
    start = 0
    for match in _CLAUSE_END.finditer(text):
        if match.group(0).startswith("."):
            before = _WORD_BEFORE.search(text, max(start, match.start() - 8), match.start() + 1)
            if before and before.group(1).rstrip(".") in _ABBREVIATIONS:
                continue
        end = match.end() if match.group(0)[:1] in "!?" else match.start()
        parts.append(text[start:end])
        start = match.end()
    parts.append(text[start:])
    return [part.strip(" ,:-") for part in parts if part.strip(" ,:-")]


# --- mentions ----------------------------------------------------------------------------------

_W = r"(?:[\w'%+.-]+\s+)"  # one word and its space
_MULT = (
    r"(?:\d+(?:\.\d+)?\s*x\b|\bx\s*\d+(?:\.\d+)?\b|\bdouble[sd]?\b|\bdoubling\b|\btwice\b"
    r"|\btriple[sd]?\b|\btripling\b|\bthrice\b|\bquadruple[sd]?\b|\b\d+\s*-?\s*fold\b"
    r"|\+\s*\d+\s*%|\b\d+\s*%\s*(?:more|extra|increase)\b|\b(?:two|three|four)\s+times\b"
    r"|\bmultiplied\b|\bboost(?:ed)?\b|\bincreased?\b)"
)
_UPLOAD = r"(?:\bupload(?:\s+credits?)?\b|\bul\b|\bseed(?:ing)?\s+credits?\b)"
_BONUS = r"(?:\b(?:seedbonus|bonus)(?:\s+points?)?\b|\bbp\b|\bbon\b|\bpoints?\b|\bkarma\b)"
_EVENT_WORDS = r"(?:multiplier|boost|event|weekend|week|day|bonanza|party|happy\s+hour)"
_MENTIONS: tuple[tuple[EventType, re.Pattern[str]], ...] = (
    (
        "multiplier",
        re.compile(
            rf"{_MULT}\s+(?:the\s+|all\s+|your\s+)?{_W}?{_UPLOAD}|{_UPLOAD}\s+{_W}{{0,3}}{_MULT}"
            rf"|{_UPLOAD}\s+(?:bonus|{_EVENT_WORDS})\b|\bdoubleseed\b"
        ),
    ),
    (
        "bonus",
        re.compile(
            rf"{_MULT}\s+(?:the\s+|all\s+|your\s+|as\s+many\s+)?{_W}?{_BONUS}"
            rf"|{_BONUS}\s+{_W}{{0,3}}{_MULT}|{_BONUS}\s+{_EVENT_WORDS}\b"
        ),
    ),
    (
        "freeleech",
        re.compile(
            r"\b(?:freeleech|fl|neutralleech)\b|\b100\s*%\s*free\b|\bfree\s+download\b"
            r"|\b(?:download|leech\w*)\s+(?:[\w']+\s+){0,3}?(?:will\s+not|won't|wont|do\s+not"
            r"|don't|does\s+not|doesn't|is\s+not|isn't|are\s+not|aren't|not|never|shall\s+not)"
            r"\s+(?:be\s+)?(?:count\w*|record\w*|affect\w*|decrease\w*|hurt\w*|cost\w*"
            r"|charged|reduce\w*|lower\w*)"
            r"|\bignor\w*\s+(?:the\s+)?download\b|\bdownload\s+(?:is|are|will\s+be)\s+(?:free"
            r"|ignored|not\s+counted)\b"
        ),
    ),
)
# A freeleech named on its own must come with something that makes it an event.
_STRONG_FL = re.compile(r"\bdownload|ignor|leech\w*\s|100\s*%|free\s+download|neutralleech")
_GLOBAL = re.compile(
    r"\b(?:sitewide|global(?:ly)?|site|whole\s+site|entire\s+site|everything|everyone|everybody"
    r"|all\s+(?:the\s+)?\w+|every\s+torrent|on\s+(?:all|every)\w*|for\s+all|tracker)\b"
)
_HOLIDAYS = (
    r"christmas|xmas|x-mas|holidays?|new\s+year'?s?|halloween|easter|thanksgiving|black\s+friday"
    r"|cyber\s+monday|birthday|anniversary|summer|winter|spring|autumn|valentine'?s?"
)
_EVENT_NOUN = re.compile(
    r"\b(?:weekend|week|day|event|period|party|celebration|hour|hours|mode|promo|promotion"
    rf"|mon|tues|wednes|thurs|fri|satur|sun)(?:day)?s?\b|\b(?:{_HOLIDAYS})\b"
)
_STATE = re.compile(
    r"\b(?:is|are|'s)\s+(?:now\s+|back\s+)?(?:on|live|active|enabled|running|underway|back"
    r"|in\s+effect|freeleech|free|here)\b|\b(?:has|have)\s+(?:now\s+)?(?:begun|started"
    r"|been\s+(?:extended|enabled|activated|switched\s+on|turned\s+on))\b|\bbegins?\b|\bbegan\b"
    r"|\bstarts?\b|\bstarted\b|\bstarting\b|\bactivated\b|\benabled\b|\bextended\b|\bkicks?\s+off\b"
    r"|\bgoes\s+live\b|\bturned\s+on\b|\bswitched\s+on\b|\bends?\b|\bending\b|\bremov\w+"
    r"|\bnow\b|\btoday\b|\btonight\b|\btomorrow\b"
)
_NOW = re.compile(
    r"\b(?:now|has\s+begun|have\s+begun|has\s+started|is\s+(?:on|live|active|running|underway)"
    r"|activated|enabled|in\s+effect)\b"
)

# --- what makes a mention not an event ---------------------------------------------------------

_DISCUSSION = re.compile(
    r"\b(?:discuss\w*|poll|polls|survey|vote|voting|feedback|suggest\w*|propos\w*|ideas?"
    r"|opinions?|thoughts|what\s+do\s+you\s+think|tell\s+us|let\s+us\s+know|should\s+we"
    r"|would\s+you|do\s+you\s+want|considering|thinking\s+about|worth\s+it)\b"
)
_ENDED = re.compile(
    r"\b(?:ended|is\s+over|are\s+over|was\s+over|'s\s+over|over\s+now|finished|concluded"
    r"|expired|is\s+done|came\s+to\s+an\s+end|cancelled|called\s+off|postponed|no\s+longer"
    r"|not\s+any\s*more|removed|disabled|turned\s+off|switched\s+off|last\s+(?:week|weekend"
    r"|month|year)|yesterday|thanks\s+for\s+participating)\b"
)
_FUTURE = re.compile(r"\b(?:will|'ll|going\s+to|is\s+to|to\s+be|shall|soon)\b")
_NEGATORS = re.compile(
    r"\b(?:no|not|never|without|nor|none|neither|cannot|can't|isn't|aren't|won't|wasn't"
    r"|weren't|don't|doesn't|didn't)\b|n't\b"
)
_NOT_NEGATING = re.compile(r"\b(?:no\s+matter|not\s+only|not\s+just|no\s+more\s+excuses)\b")
# A limit on whom or what the event is for: read in the mention's own stretch of the clause.
_LIMITS = re.compile(
    # a subset of members
    r"\b(?:vips?|donors?|donators?|power\s+users?|elites?|supervips?|staff\s+only|members\s+of"
    r"|class(?:es)?\s+only|new\s+(?:users|members|uploaders|accounts|recruits)|winners?|prizes?"
    r"|santee|(?:their|your)\s+first\s+(?:\d+|few|week|month)"
    r"|top\s+(?:\d+\s+)?(?:uploaders|seeders|donors|members|users)|\w+-only"
    r"|only\s+for\s+(?!this|the\s+next|today|tonight|tomorrow|\d)"
    r"|benefits|membership|tiers?|subscribers?|premium|gold\s+members?"
    r"|up\s*to\s+(?:\d+(?:\.\d+)?\s*x|double|triple|twice)"
    # personal
    r"|personal|pfl|wedges?|tokens?|slots?|vouchers?|coupons?|your\s+own|of\s+your\s+choice"
    # a subset of torrents
    r"|picks?|picked|(?<!end\s)(?<!rest\s)of\s+the\s+(?:week|month)|flotw|bookclubs?"
    r"|book\s+clubs?|(?:a|one|this|that|any|each|single)\s+(?:[\w-]+\s+)?torrent\b"
    r"|selected|select\s+torrents|certain|some\s+torrents"
    r"|new\s+(?:uploads?|torrents?)|contest\s+uploads?|uploads?\s+for\s+the\s+contest"
    r"|following\s+their\s+upload|internals?|packs?|boxsets?|box\s+sets?"
    r"|(?:torrents?|files?)\s+(?:above|over|larger\s+than|bigger\s+than|under|below"
    r"|smaller\s+than|with\s+(?:less|fewer)\s+than)|requests?|reseeds?|tagged|flagged|marked"
    r"|(?:torrents?|ones?)\s+that\s+are|irc"
    # not what seeding earns, but a limit or a part of the site
    r"|caps?|limits?|capacity|system|maximum|ceiling|balance|history|graph"
    # offers to buy or donate
    r"|donat\w*|crypto|store|shop|buy\w*|bought|purchas\w*|price[sd]?|pricing|sales?|discount\w*"
    r"|\d+\s*%\s*off|half\s+price|redeem\w*|spend\w*|spent|entry\s+fee|costs?\s+\d"
    r"|cost\s+(?:of|only)"
    # earned by an individual action
    r"|quests?|tasks?|achievements?|challenges?|for\s+(?:each|every)\s+(?:upload|request|post"
    r"|invite|referral|review)|for\s+filling|for\s+your\s+first|when\s+you\s+(?:complete"
    r"|donate|upload|invite))\b"
)
# What frames a whole clause as not an announcement of an event: read in the whole clause.
_FRAMES = re.compile(
    # permanent policy and habits
    r"\b(?:from\s+now\s+on|from\s+then\s+on(?:wards)?|henceforth|permanent(?:ly)?|by\s+default"
    r"|automatic(?:ally)?|auto-\w+|no\s+matter|regardless|always|policy|weekly|monthly|daily"
    r"|every\s+(?:week|weekend|month|day|\w+day)|each\s+(?:week|weekend|month)"
    r"|on\s+(?:mon|tues|wednes|thurs|fri|satur|sun)days|on\s+weekends"
    # definitions, hypotheticals, other sites
    r"|means?|meaning|is\s+when|refers?\s+to|defined\s+as|sometimes|usually|occasionally|often"
    r"|from\s+time\s+to\s+time|whenever|if|unless|when\s+you|once\s+you|would(?!\s+like)|could"
    r"|might|may\s+(?:be|have|not|also|change|end)|maybe|perhaps|possibly|in\s+the\s+future"
    r"|someday|away\s+from|most\s+sites|other\s+sites|other\s+trackers|private\s+trackers?"
    r"|trackers?\s+i\s+use|like\s+the|during\s+an?)\b"
)
# Software changes (update notes): a bare "freeleech" next to these is a feature, not an event.
_SOFTWARE = re.compile(
    r"\b(?:bug|bugs|fix|fixed|fixes|filter|filters|icon|icons|search|page|pages|column|display"
    r"|displays|displayed|shows?|shown|feature|option|options|setting|settings|preference"
    r"|preferences|button|link|tag|tags|named|label|tooltip|api|rss|sort|sorting)\b"
)
_IMPERATIVE = re.compile(
    r"^(?:enable|disable|toggle|configure|redeem|buy|purchase|complete"
    r"|(?:double|triple|boost|increase|improve|maximi[sz]e)\s+your)\b"
)
_GLOSS_MAX = 300  # glossary entries are short (and the pattern is not linear in long texts)
_GLOSS = re.compile(r"^\s*[^()\n]{1,40}\([^)]*\b(?:is|are|means|where|when)\b[^)]*\)?[\s.!]*$")
# Cheap test before the real work: texts without any of these stems announce nothing.
_ANY_EVENT_WORD = re.compile(
    r"fl|leech|leach|lech|free|bonus|bouns|point|pionts|bp|bon|upload|uplaod|ul\b|seed|download"
    r"|karma|x\s*\d|\d\s*x|doubl|tripl|twice"
)
_ENDING = re.compile(r"\b(?:remov\w*|non-\w+|end\w*|clos\w*|disabl\w*|revert\w*)")
_ARTICLE_BEFORE = re.compile(r"\b(?:a|an|any)\s+(?:[\w-]+\s+)?$")


@dataclass(frozen=True)
class _Mention:
    event_type: EventType
    start: int
    end: int


def _mentions(clause: str) -> list[_Mention]:
    """Event mentions in document order: overlapping ones of a type kept once, and a bonus
    mention inside an upload one dropped ("upload bonus" is an upload multiplier)."""
    found: list[_Mention] = []
    for event_type, pattern in _MENTIONS:
        last_end = -1
        for match in pattern.finditer(clause):  # in order, so one sweep removes overlaps
            if match.start() >= last_end:
                found.append(_Mention(event_type, match.start(), match.end()))
                last_end = match.end()
    uploads = [m for m in found if m.event_type == "multiplier"]  # sorted, not overlapping
    kept: list[_Mention] = []
    index = 0
    for mention in found:
        if mention.event_type == "bonus":
            while index < len(uploads) and uploads[index].end <= mention.start:
                index += 1
            if index < len(uploads) and uploads[index].start < mention.end:
                continue
        kept.append(mention)
    kept.sort(key=lambda m: (m.start, -m.end))
    return kept


_AFTER_WORDS = re.compile(r"\s*(?:[\w']+\s*){1,4}")
_NEXT_BEFORE = re.compile(r"\bnext\s+(?:[\w-]+\s+)?$")


def _negated(clause: str, mention: _Mention, window: tuple[int, int]) -> bool:
    """A negator just before the mention, inside it, or right after it ("is not", "won't")."""
    inside = clause[mention.start : mention.end]
    if mention.event_type == "freeleech" and _STRONG_FL.search(inside):
        inside = ""  # "downloads will not count": the negation is the event itself
    before = clause[max(window[0], mention.start - 24) : mention.start]
    before = before[before.rfind(",") + 1 :]
    after = _AFTER_WORDS.match(clause, mention.end, window[1])
    for part in (before, inside, after.group(0) if after else ""):
        if _NEGATORS.search(_NOT_NEGATING.sub(" ", part)):
            return True
    return False


def _ended(stretch: str) -> bool:
    ended = _ENDED.search(stretch)
    return ended is not None and not _FUTURE.search(stretch, 0, ended.start())


def _framed(clause: str) -> bool:
    """A question, a discussion, a policy, a definition or a what-if: no event in it."""
    return clause.endswith("?") or bool(_DISCUSSION.search(clause) or _FRAMES.search(clause))


def _qualifies(clause: str, mention: _Mention, window: tuple[int, int], period: Period) -> bool:
    """Whether a mention is a site event (not negated, over, limited or generic)."""
    stretch = clause[window[0] : window[1]]
    if _LIMITS.search(stretch) or _ended(stretch) or _negated(clause, mention, window):
        return False
    anchored = bool(period) or _STATE.search(stretch) is not None
    before = clause[max(0, mention.start - 40) : mention.start]
    if _ARTICLE_BEFORE.search(before) and not anchored:
        return False  # "a freeleech torrent ...", "during a 2x upload event ...": generic
    if _NEXT_BEFORE.search(before) and not period:
        return False  # "'till next Site FL": some future one, not announced
    if mention.event_type != "freeleech":
        return True
    phrase = clause[mention.start : mention.end]
    if _STRONG_FL.search(phrase):
        return True
    if _SOFTWARE.search(stretch):
        return False
    return bool(
        _GLOBAL.search(stretch) or _EVENT_NOUN.search(stretch) or _STATE.search(stretch) or period
    )


def _windows(clause: str, mentions: list[_Mention]) -> list[tuple[int, int]]:
    """Each mention's own stretch of the clause: from the previous mention to the next one."""
    out: list[tuple[int, int]] = []
    for index, mention in enumerate(mentions):
        start = mentions[index - 1].end if index else 0
        end = mentions[index + 1].start if index + 1 < len(mentions) else len(clause)
        out.append((min(start, mention.start), max(end, mention.end)))
    return out


def read_events(text: str, *, ref: datetime, tz: tzinfo) -> list[Finding]:
    """The site events ``text`` announces (at most one per type), dates resolved around ``ref``.

    ``ref`` is when the announcement was made (an update note's date) or first seen; relative
    dates ("tomorrow", "for 48 hours", "this weekend") count from it, in zone ``tz``. When
    several mentions of one type are found, the one with a stated end wins.
    """
    if not text or not _ANY_EVENT_WORD.search(text.lower()):
        return []
    normal = normalise(text)
    if (
        len(normal) < _GLOSS_MAX
        and _GLOSS.match(normal)
        and not find_period(normal, ref=ref, tz=tz)
    ):
        return []  # "Global FreeLeech (Site is in Global Freeleech, ...)": a glossary entry
    # Groups: a clause with mentions and the clauses after it without any (they carry its dates).
    groups: list[tuple[str, list[_Mention], list[str]]] = []
    preamble: list[str] = []
    for part in clauses(normal):
        if _IMPERATIVE.match(part):
            continue
        found = _mentions(part)
        if found:
            groups.append((part, found, preamble))
            preamble = []
        elif groups:
            groups[-1][2].append(part)
        else:
            preamble.append(part)
    best: dict[EventType, Finding] = {}
    guessed: dict[EventType, bool] = {}  # the kept finding's end comes from a period word
    for clause, found, context in groups:
        if _framed(clause) or any(_ended(extra) for extra in context):
            continue  # a question...; "Double upload weekend. It has been cancelled."
        ending = _ENDING.search(clause) is not None
        period = find_period(clause, ref=ref, tz=tz, ending=ending)
        if not period and context:
            period = find_period(" ; ".join([clause, *context]), ref=ref, tz=tz, ending=ending)
        for mention, window in zip(found, _windows(clause, found), strict=True):
            if not _qualifies(clause, mention, window, period):
                continue
            # "is live", "now": running, whatever start a period word suggests ("weekend").
            running = _NOW.search(clause, *window) is not None
            start = None if running and (period.guessed_start or not period.start) else period.start
            finding = Finding(mention.event_type, start, period.end)
            known = best.get(mention.event_type)
            if (
                known is None
                or (known.end is None and finding.end is not None)
                or (guessed[mention.event_type] and finding.end and not period.guessed_end)
            ):
                best[mention.event_type] = finding
                guessed[mention.event_type] = period.guessed_end
    return [best[event_type] for event_type in EVENT_TYPES if event_type in best]
