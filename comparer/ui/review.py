"""Voting on the Compare tab and the Review tab: history, tally, re-open with a diff, exports."""

from __future__ import annotations

import html
import re
import time

import gradio as gr

from comparer.models.presets import RANDOM
from comparer.reviews import leaderboard
from comparer.reviews.diff import side_by_side_html, similarity
from comparer.reviews.export import FORMATS, export
from comparer.reviews.store import TAGS, ReviewError, ReviewStore
from comparer.reviews.tally import tally_counts, tally_line, tally_markdown
from comparer.ui.access import Access, oauth_on
from comparer.ui.errors import clear_errors
from comparer.ui.cards import card_markdown

VOTE_CHOICES = [("Left is better", "left"), ("Right is better", "right"), ("Tie", "tie"), ("Both bad", "both_bad")]
# blind mode names the panes Model A (left) and Model B (right); the buttons follow
BLIND_VOTE_CHOICES = [("A is better", "left"), ("B is better", "right"), ("Tie", "tie"), ("Both bad", "both_bad")]
HIDDEN = "hidden until a vote"
HISTORY_PAGE = 200  # newest matching comparisons shown; filters narrow it (the store pages in SQL)
# the /history API's rows keep when, preset, left, right and blind first and the id last (API callers index them)
HISTORY_COLUMNS = ["when (UTC)", "preset", "left", "right", "blind", "status", "vote", "tags", "note",
                   "decode tok/s (left / right)", "prompt", "id"]
# pixels, 1,200 in all: the whole table, id included, fits a 1280-wide window; a phone scrolls it sideways
HISTORY_WIDTHS = ["80px", "80px", "84px", "84px", "64px", "70px", "80px", "82px", "104px", "80px", "88px", "300px"]
NOTE_CHARS, PROMPT_CHARS = 120, 60
LEADERBOARD_COLUMNS = ["rank", "model", "rating (Elo scale)", "95 % interval", "votes", "wins", "losses",
                       "ties + both bad"]
LEADERBOARD_NOTE = (f"Bradley-Terry fit over every model's latest votes, on the Elo scale (1000 = the average "
                    f"model; +100 = 64 % expected wins). 95 % intervals from {leaderboard.BOOTSTRAP_ROUNDS} "
                    "bootstrap resamples of the votes; ties and both bad count half a win for each side. "
                    "**rank** = 1 + the models whose interval lies wholly above. With few votes per model the "
                    "intervals mean little.")
# the vote filter is relative to a model, not a side: blind runs shuffle which model sat on the left
VOTE_FILTER_CHOICES = [("any", ""), ("the chosen model won", "won"), ("the chosen model lost", "lost"),
                       ("tie", "tie"), ("both bad", "both_bad"), ("not voted yet", "none")]
PAIR_SEPARATOR = " vs "
EXPORT_SUFFIX = {"csv": ".csv", "jsonl": ".jsonl", "llm-comparator": ".json", "leaderboard-csv": "-leaderboard.csv"}


class ReviewService:
    def __init__(self, store: ReviewStore, access: Access | None = None):
        self.store, self.access = store, access or Access()

    def _visible(self, comparison_id: str, request, profile) -> dict | None:
        """The comparison if this caller may see it (theirs, or any for a reviewer), else None."""
        owner = self.access.owner(request, profile)
        if owner is not None and self.store.owner_of(comparison_id) != owner:
            return None
        return self.store.get(comparison_id)

    @clear_errors("Recording the vote")
    def vote(self, comparison_id: str, vote: str, tags: list[str] | None = None, note: str = "",
             request: gr.Request = None, profile: gr.OAuthProfile | None = None) -> tuple:
        """Record a vote (allowed while generating); reveal the models; return the new tally."""
        if not comparison_id:
            raise gr.Error("Nothing to vote on yet: press Compare first.")
        if not vote:
            raise gr.Error("Pick a verdict first: left, right, tie or both bad.")
        if self._visible(str(comparison_id), request, profile) is None:
            raise gr.Error(f"No comparison with id {str(comparison_id)[:40]!r} in your session: vote on the "
                           "comparison on your screen.")
        try:
            self.store.add_vote(str(comparison_id), vote, list(tags or []), note or "")
        except ReviewError as err:
            raise gr.Error(str(err)) from err
        item = self.store.get(str(comparison_id))
        labels = dict((v, k) for k, v in (BLIND_VOTE_CHOICES if item["blind"] else VOTE_CHOICES))
        reveal = (f"Vote recorded: **{labels[vote]}**. "
                  f"Left was **{as_text(item['left_model'])}**, right was **{as_text(item['right_model'])}**.")
        pair = (item["left_model"], item["right_model"])
        owner = self.access.owner(request, profile)
        (pair_tally,) = tally_counts(self.store.latest_votes(pair=pair, owner=owner))
        return reveal, tally_line(pair_tally, as_text)

    @staticmethod
    def fresh_form(blind: bool, preset: str | None = None) -> tuple:
        """An empty vote form for the comparison just started (a vote belongs to exactly the comparison on
        screen: no verdict, tag or note carries over), its buttons named as the panes are."""
        choices = BLIND_VOTE_CHOICES if blind or preset == RANDOM else VOTE_CHOICES
        return gr.Radio(choices=choices, value=None), gr.CheckboxGroup(value=[]), gr.Textbox(value=""), ""

    def reveal_panes(self, comparison_id: str, request: gr.Request = None,
                     profile: gr.OAuthProfile | None = None) -> tuple:
        """After a vote: the real names on the panes and their cards."""
        item = self._visible(str(comparison_id), request, profile) if comparison_id else None
        if item is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        cards = [card_markdown_from_dict(item[f"{side}_card"]) for side in ("left", "right")]
        return (*cards, gr.Textbox(label=f"left: {item['left_model']}"), gr.Textbox(label=f"right: {item['right_model']}"))

    @clear_errors("Reading the history")
    def history(self, pair: str | None = None, preset: str | None = None, vote: str | None = None,
                request: gr.Request = None, profile: gr.OAuthProfile | None = None) -> tuple:
        """The newest matching comparisons this caller may see (see comparer/ui/access.py), the tally of
        their pairs and the filter's choices. ``pair``: "a vs b" for one pair, or one model's name for every
        comparison it took part in; ``vote``: see comparer.reviews.store._filters."""
        owner = self.access.owner(request, profile)
        filters = dict(_pair_or_model(pair), preset=preset or None)
        try:
            items = self.store.history(vote=vote or None, limit=HISTORY_PAGE, owner=owner, **filters)
        except ReviewError as err:
            raise gr.Error(str(err)) from err
        rows = [history_row(hide_unvoted_blind(i)) for i in items]
        tallies = tally_counts(self.store.latest_votes(owner=owner, **filters))
        return ({"headers": HISTORY_COLUMNS, "data": rows}, tally_markdown(tallies, as_text),
                gr.Dropdown(choices=self.filter_choices(owner)))

    def filter_choices(self, owner: str | None) -> list[str]:
        """Every nameable model, then every pair (unvoted blind comparisons name none: ReviewStore.pairs)."""
        pairs = {tuple(sorted(p)) for p in self.store.pairs(owner)}
        models = sorted({m for p in pairs for m in p})
        return ["", *models, *sorted(PAIR_SEPARATOR.join(p) for p in pairs)]

    @clear_errors("Ranking the models")
    def leaderboard_table(self, pair: str | None = None, preset: str | None = None, vote: str | None = None,
                    request: gr.Request = None, profile: gr.OAuthProfile | None = None) -> dict:
        """The Bradley-Terry leaderboard of the comparisons the filters select (the vote filter aside: a
        ranking needs every verdict)."""
        owner = self.access.owner(request, profile)
        rows = self.store.latest_votes(owner=owner, preset=preset or None, **_pair_or_model(pair))
        return {"headers": LEADERBOARD_COLUMNS, "data": leaderboard.table_rows(leaderboard.leaderboard(rows))}

    @clear_errors("Re-opening")
    def reopen(self, comparison_id: str, request: gr.Request = None, profile: gr.OAuthProfile | None = None) -> tuple:
        item = self._visible((comparison_id or "").strip(), request, profile)
        if item is None:
            raise gr.Error(f"No comparison with id {comparison_id!r}: copy an id from the history table.")
        item = hide_unvoted_blind(item)
        votes = "\n".join(f"- {v['vote']} {as_text(', '.join(v['tags']))} {as_text(v['note'])}"
                          for v in item["votes"]) or "no votes"
        header = (f"**{as_text(item['left_model'])}** (left) vs **{as_text(item['right_model'])}** (right), "
                  f"preset {as_text(item['preset'] or 'custom')}, "
                  f"status {item['status']}; word overlap {similarity(item['left_output'], item['right_output']):.0%}"
                  f"\n\nVotes:\n{votes}")
        view = side_by_side_html(item["left_output"], item["right_output"], f"left: {item['left_model']}",
                                 f"right: {item['right_model']}")
        return item["prompt"], item["left_output"], item["right_output"], header, view

    def reopen_selected(self, evt: gr.SelectData, request: gr.Request = None,
                        profile: gr.OAuthProfile | None = None) -> tuple:
        """Clicking a history row re-opens that comparison (its id is the last column)."""
        comparison_id = str(evt.row_value[-1])
        return (comparison_id, *self.reopen(comparison_id, request, profile))

    @clear_errors("The export")
    def export_file(self, fmt: str, request: gr.Request = None,
                    profile: gr.OAuthProfile | None = None) -> tuple[str, str]:
        """The export as (text, file name): the browser saves the text as a file (DOWNLOAD_JS), so no server
        path is ever sent (a Gradio file output names its absolute cache path)."""
        self.access.require_reviewer(request, profile, "Exporting reviews")
        if fmt not in FORMATS:
            raise gr.Error(f"Choose an export format: {', '.join(FORMATS)}.")
        name = f"comparer-reviews-{time.strftime('%Y%m%d-%H%M%S')}{EXPORT_SUFFIX[fmt]}"
        return export([hide_unvoted_blind(i) for i in self.store.history(limit=1_000_000)], fmt), name


# saves the export's text under its name, in the browser
DOWNLOAD_JS = """(text, name) => {
  if (!name) return;
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text || ""], {type: "text/plain;charset=utf-8"}));
  link.download = name;
  document.body.appendChild(link); link.click(); link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}"""


def as_text(text: str) -> str:
    """What a user wrote, for a Markdown component: HTML escaped, Markdown's markup characters backslash-escaped
    and URLs kept from becoming links (a word joiner after the scheme), so a note with <img src=...>,
    [a](http://...) or a bare address shows as typed, is not a link, and makes the browser fetch nothing."""
    escaped = html.escape(str(text), quote=True)
    escaped = re.sub(r"([\\`*_\[\]()!|~])", r"\\\1", escaped)
    return re.sub(r"(://|www\.)", lambda m: m.group(1)[0] + "\u2060" + m.group(1)[1:], escaped)


def hide_unvoted_blind(item: dict) -> dict:
    """A blind comparison nobody has voted on yet, with both models' names and cards hidden (history, re-open,
    exports): blind hides identity everywhere until the vote."""
    if not item.get("blind") or item.get("votes"):
        return item
    hidden = dict(item, left_model=f"Model A ({HIDDEN})", right_model=f"Model B ({HIDDEN})", left_card=None,
                  right_card=None, preset=HIDDEN)
    for side in ("left", "right"):
        hidden[f"{side}_stats"] = {k: v for k, v in (item.get(f"{side}_stats") or {}).items() if k != "model_id"}
    return hidden


def _pair_or_model(choice: str | None) -> dict:
    """The store's filter for the Review tab's one "model or pair" choice: "a vs b" or a single model."""
    choice = (choice or "").strip()
    if PAIR_SEPARATOR in choice:
        return {"pair": tuple(m.strip() for m in choice.split(PAIR_SEPARATOR, 1)), "model": None}
    return {"pair": None, "model": choice or None}


def history_row(item: dict) -> list:
    """One history row (HISTORY_COLUMNS) of a comparison as it may be shown (hide_unvoted_blind first).
    Cells are plain strings: the table renders them as text, so what a user typed shows as typed."""
    latest = item["votes"][-1] if item["votes"] else None
    speeds = " / ".join(_tok_per_s(item.get(f"{side}_stats")) for side in ("left", "right"))
    return [time.strftime("%Y-%m-%d %H:%M", time.gmtime(item["created_at"])), item["preset"] or "custom",
            item["left_model"], item["right_model"], item["blind"], item["status"], verdict(item),
            ", ".join(latest["tags"]) if latest else "", _clip(latest["note"], NOTE_CHARS) if latest else "", speeds,
            _clip(item["prompt"], PROMPT_CHARS), item["id"]]


def verdict(item: dict) -> str:
    """The latest vote named by model ("demo-mamba better"), since the side it sat on varies in blind runs."""
    if not item["votes"]:
        return "not voted"
    vote = item["votes"][-1]["vote"]
    if vote in ("left", "right"):
        return f"{item[f'{vote}_model']} better"
    return "both bad" if vote == "both_bad" else vote


def _tok_per_s(stats: dict | None) -> str:
    rate = (stats or {}).get("decode_tok_per_s")
    return f"{rate:.1f}" if isinstance(rate, (int, float)) else "–"


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[:chars - 1] + "…"


def card_markdown_from_dict(card: dict | None) -> str:
    from comparer.models.arch import ArchitectureCard

    return card_markdown(ArchitectureCard.from_dict(card)) if card else ""


def vote_panel() -> dict:
    """The verdict row under the two panes."""
    with gr.Group():
        with gr.Row():
            vote = gr.Radio(VOTE_CHOICES, label="Your verdict (you can vote while they generate)", elem_id="vote")
            tags = gr.CheckboxGroup(list(TAGS), label="tags (optional)", elem_id="tags")
        with gr.Row():
            note = gr.Textbox(label="note (optional)", lines=1, scale=4)
            submit = gr.Button("Submit vote", variant="primary", elem_id="vote-btn", scale=1)
        reveal = gr.Markdown(elem_id="reveal")
        vote_tally = gr.Markdown(elem_id="vote-tally")
    return {"vote": vote, "tags": tags, "note": note, "vote_btn": submit, "reveal": reveal, "vote_tally": vote_tally}


def review_tab(service: ReviewService, preset_names: list[str]) -> tuple:
    """The Review tab; returns (refresh button, history filters, history outputs) for the page's load event."""
    _access_note(service)
    with gr.Row():
        pair = gr.Dropdown([""], value="", label="model or pair", allow_custom_value=True, elem_id="filter-model")
        preset = gr.Dropdown([""] + preset_names, value="", label="preset", elem_id="filter-preset")
        vote = gr.Dropdown(VOTE_FILTER_CHOICES, value="", label="latest vote", elem_id="filter-vote")
        refresh = gr.Button("Refresh", variant="secondary", elem_id="refresh-btn")
    tally_md = gr.Markdown(elem_id="tally")
    table = gr.Dataframe(headers=HISTORY_COLUMNS, value={"headers": HISTORY_COLUMNS, "data": []}, interactive=False,
                         wrap=True, column_widths=HISTORY_WIDTHS, elem_id="history",
                         label="history: newest first; click a row to re-open it below")
    ranking = _leaderboard_section()
    reopen_id, reopen_btn, reopened = _reopen_section()
    _export_section(service)
    filters, outputs = [pair, preset, vote], [table, tally_md, pair]
    refresh.click(service.history, inputs=filters, outputs=outputs, api_name="history")
    # the leaderboard derives from the same votes as the tally: recomputed whenever the tally changes
    tally_md.change(service.leaderboard_table, inputs=filters, outputs=[ranking], api_visibility="private")
    reopen_btn.click(service.reopen, inputs=[reopen_id], outputs=reopened, api_name="reopen")
    table.select(service.reopen_selected, inputs=None, outputs=[reopen_id, *reopened], api_visibility="private")
    return refresh, filters, outputs


def _access_note(service: ReviewService) -> None:
    if service.access.public:
        gr.Markdown("You see the comparisons of your own session. Reviewers named by the operator see all of "
                    "them and can export" + (": sign in." if oauth_on() else "."))
        if oauth_on():
            gr.LoginButton()


def _leaderboard_section() -> gr.Dataframe:
    gr.Markdown("### Leaderboard")
    ranking = gr.Dataframe(headers=LEADERBOARD_COLUMNS, value={"headers": LEADERBOARD_COLUMNS, "data": []},
                           interactive=False, wrap=True, elem_id="leaderboard")
    gr.Markdown(LEADERBOARD_NOTE, elem_id="leaderboard-note")
    return ranking


def _reopen_section() -> tuple[gr.Textbox, gr.Button, list]:
    """The re-open row and what it fills, in ReviewService.reopen's order: prompt, the raw texts, the header,
    the two outputs side by side."""
    with gr.Row():
        reopen_id = gr.Textbox(label="comparison id to re-open (the history's last column)", scale=4,
                               elem_id="reopen-id")
        button = gr.Button("Re-open", scale=1, elem_id="reopen-btn")
    header = gr.Markdown(elem_id="reopen-header")
    prompt = gr.Textbox(label="prompt", lines=2, interactive=False)
    gr.Markdown("**Side by side** (highlighted: passages both outputs share)")
    view = gr.HTML(elem_id="side-by-side")
    with gr.Accordion("Both outputs as plain text (to copy)", open=False):
        with gr.Row():
            left = gr.Textbox(label="left output", lines=6, interactive=False)
            right = gr.Textbox(label="right output", lines=6, interactive=False)
    return reopen_id, button, [prompt, left, right, header, view]


def _export_section(service: ReviewService) -> None:
    with gr.Row():
        fmt = gr.Radio(list(FORMATS), value="csv", label="export format")
        export_btn = gr.Button("Export and download", elem_id="export-btn")
        export_text = gr.Textbox(visible=False)
        export_name = gr.Textbox(visible=False)
    export_btn.click(service.export_file, inputs=[fmt], outputs=[export_text, export_name], api_name="export").then(
        None, inputs=[export_text, export_name], js=DOWNLOAD_JS)
