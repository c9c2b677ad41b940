"""Voting on the Compare tab and the Review tab: history, tally, re-open with a diff, exports."""

from __future__ import annotations

import html
import re
import time

import gradio as gr

from comparer.models.presets import RANDOM
from comparer.reviews.diff import diff_html, similarity
from comparer.reviews.export import FORMATS, export
from comparer.reviews.store import TAGS, VOTES, ReviewError, ReviewStore
from comparer.reviews.tally import tally_counts, tally_markdown
from comparer.ui.access import Access, oauth_on
from comparer.ui.errors import clear_errors
from comparer.ui.cards import card_markdown

VOTE_CHOICES = [("Left is better", "left"), ("Right is better", "right"), ("Tie", "tie"), ("Both bad", "both_bad")]
# blind mode names the panes Model A (left) and Model B (right); the buttons follow
BLIND_VOTE_CHOICES = [("A is better", "left"), ("B is better", "right"), ("Tie", "tie"), ("Both bad", "both_bad")]
HIDDEN = "hidden until a vote"
HISTORY_PAGE = 200  # newest matching comparisons shown; filters narrow it (the store pages in SQL)
HISTORY_COLUMNS = ["when (UTC)", "preset", "left", "right", "blind", "vote", "prompt", "id"]
EXPORT_SUFFIX = {"csv": ".csv", "jsonl": ".jsonl", "llm-comparator": ".json"}


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
        return reveal, tally_markdown(tally_counts(self.store.latest_votes(pair=pair, owner=owner)))

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
        """The newest matching comparisons this caller may see (see comparer/ui/access.py)."""
        wanted = tuple(pair.split(" vs ")) if pair else None
        owner = self.access.owner(request, profile)
        items = self.store.history(wanted, preset or None, vote or None, limit=HISTORY_PAGE, owner=owner)
        shown = [hide_unvoted_blind(i) for i in items]
        rows = [[time.strftime("%Y-%m-%d %H:%M", time.gmtime(i["created_at"])), i["preset"], i["left_model"],
                 i["right_model"], i["blind"], i["votes"][-1]["vote"] if i["votes"] else "none",
                 i["prompt"][:80], i["id"]] for i in shown]
        pairs = sorted({" vs ".join(sorted(p)) for p in self.store.pairs(owner)})
        tallies = tally_counts(self.store.latest_votes(wanted, preset or None, owner))
        return rows, tally_markdown(tallies), gr.Dropdown(choices=[""] + pairs)

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
        return item["prompt"], item["left_output"], item["right_output"], header, diff_html(item["left_output"],
                                                                                           item["right_output"])

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
            submit = gr.Button("Submit vote", elem_id="vote-btn", scale=1)
        reveal = gr.Markdown(elem_id="reveal")
        vote_tally = gr.Markdown(elem_id="vote-tally")
    return {"vote": vote, "tags": tags, "note": note, "vote_btn": submit, "reveal": reveal, "vote_tally": vote_tally}


def review_tab(service: ReviewService, preset_names: list[str]) -> None:
    if service.access.public:
        gr.Markdown("You see the comparisons of your own session. Reviewers named by the operator see all of "
                    "them and can export" + (": sign in." if oauth_on() else "."))
        if oauth_on():
            gr.LoginButton()
    with gr.Row():
        pair = gr.Dropdown([""], value="", label="pair", allow_custom_value=True)
        preset = gr.Dropdown([""] + preset_names, value="", label="preset")
        vote = gr.Dropdown(["", *VOTES, "none"], value="", label="latest vote")
        refresh = gr.Button("Refresh")
    tally_md = gr.Markdown(elem_id="tally")
    table = gr.Dataframe(headers=HISTORY_COLUMNS, interactive=False, wrap=True, elem_id="history")
    with gr.Row():
        reopen_id = gr.Textbox(label="comparison id to re-open", scale=4)
        reopen = gr.Button("Re-open", scale=1)
    header = gr.Markdown()
    prompt = gr.Textbox(label="prompt", lines=3, interactive=False)
    with gr.Row():
        left = gr.Textbox(label="left output", lines=8, interactive=False)
        right = gr.Textbox(label="right output", lines=8, interactive=False)
    gr.Markdown("**Where they differ** (red: only left, green: only right)")
    diff = gr.HTML()
    with gr.Row():
        fmt = gr.Radio(list(FORMATS), value="csv", label="export format")
        export_btn = gr.Button("Export and download", elem_id="export-btn")
        export_text = gr.Textbox(visible=False)
        export_name = gr.Textbox(visible=False)
    filters = [pair, preset, vote]
    refresh.click(service.history, inputs=filters, outputs=[table, tally_md, pair], api_name="history")
    reopen.click(service.reopen, inputs=[reopen_id], outputs=[prompt, left, right, header, diff], api_name="reopen")
    table.select(service.reopen_selected, inputs=None, outputs=[reopen_id, prompt, left, right, header, diff],
                 api_visibility="private")
    export_btn.click(service.export_file, inputs=[fmt], outputs=[export_text, export_name], api_name="export").then(
        None, inputs=[export_text, export_name], js=DOWNLOAD_JS)
    return refresh, filters, [table, tally_md, pair]
