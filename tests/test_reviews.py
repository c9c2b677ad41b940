import json
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from comparer.reviews.__main__ import main as reviews_cli
from comparer.reviews.diff import diff_html
from comparer.reviews.store import MIGRATIONS, SCHEMA_VERSION, NewComparison, ReviewError, ReviewStore
from comparer.reviews.tally import tally, wilson


def _comparison(store, left="mamba", right="pythia", prompt="moon?"):
    cid = store.start_comparison(NewComparison(prompt, left, right, {"max_new_tokens": 8}, preset="small"))
    store.finish_comparison(cid, f"{left} says", f"{right} says", {"ttft_s": 0.1}, {"ttft_s": 0.2}, "done")
    return cid


def test_store_is_wal_and_at_the_current_schema_version(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite")
    conn = sqlite3.connect(tmp_path / "r.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == store.migrate()


def test_an_older_database_is_migrated_without_losing_rows(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(f"{MIGRATIONS[0]} PRAGMA user_version = 1;")
    conn.execute("INSERT INTO comparisons (id, created_at, prompt, left_model, right_model, settings) "
                 "VALUES ('old', 1.0, 'p', 'a', 'b', '{}')")
    conn.commit()
    conn.close()
    store = ReviewStore(path)
    assert store.get("old")["prompt"] == "p"
    indexes = sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='index'").fetchall()
    assert ("comparisons_by_pair",) in indexes


def test_vote_validation_is_clear(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite")
    cid = _comparison(store)
    with pytest.raises(ReviewError, match="vote must be one of"):
        store.add_vote(cid, "maybe")
    with pytest.raises(ReviewError, match="No comparison with id"):
        store.add_vote("nope", "left")
    with pytest.raises(ReviewError, match="tags"):
        store.add_vote(cid, "left", tags=["x" * 100])


def test_vote_works_before_the_comparison_finishes(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite")
    cid = store.start_comparison(NewComparison("p", "a", "b", {}))
    store.add_vote(cid, "right", ["fluent"], "better start")
    assert store.get(cid)["status"] == "running" and store.get(cid)["votes"][0]["tags"] == ["fluent"]


def test_tally_credits_the_model_in_the_chosen_pane_with_a_wilson_interval(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite")
    for vote, left, right in [("left", "a", "b"), ("left", "b", "a"), ("right", "b", "a"), ("tie", "a", "b"),
                              ("both_bad", "a", "b")]:
        store.add_vote(_comparison(store, left, right), vote)
    (t,) = tally(store.history())
    assert (t.model_a, t.a_wins, t.b_wins, t.ties, t.both_bad) == ("a", 2, 1, 1, 1)
    rate, low, high = t.a_win_rate_ci()
    assert rate == pytest.approx(2 / 3) and 0.2 < low < 0.21 and 0.93 < high < 0.95  # Wilson, n=3
    assert wilson(0, 0) is None and wilson(10, 10)[2] == pytest.approx(1.0)


def test_exports_round_trip_in_all_three_formats(tmp_path):
    db = tmp_path / "r.sqlite"
    store = ReviewStore(db)
    ids = [_comparison(store, *pair) for pair in [("a", "b"), ("b", "a"), ("a", "b")]]
    for cid, vote in zip(ids, ["left", "left", "tie"]):
        store.add_vote(cid, vote, ["on-topic"], "note, with \"quotes\"")
    for fmt in ("csv", "jsonl", "llm-comparator"):
        out = tmp_path / f"out.{fmt}"
        assert reviews_cli(["export", "--format", fmt, "--out", str(out), "--db", str(db)]) == 0
    import csv

    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    assert sorted(r["id"] for r in rows) == sorted(ids) and rows[0]["note"] == 'note, with "quotes"'
    lines = [json.loads(line) for line in open(tmp_path / "out.jsonl")]
    assert sorted(item["id"] for item in lines) == sorted(ids) and lines[0]["left_card"] is None
    comparator = json.load(open(tmp_path / "out.llm-comparator"))
    assert [m["name"] for m in comparator["models"]] == ["a", "b"]
    scores = sorted(e["score"] for e in comparator["examples"])
    assert scores == [-1.0, 0.0, 1.0]  # a won once, b (shown on the left) won once, one tie
    flipped = [e for e in comparator["examples"] if e["individual_rater_scores"][0]["is_flipped"]]
    assert flipped[0]["output_text_a"] == "a says"


def test_export_cli_explains_a_missing_database(tmp_path, capsys):
    assert reviews_cli(["export", "--format", "csv", "--out", str(tmp_path / "x"), "--db", str(tmp_path / "no.db")]) == 2
    assert "no review database" in capsys.readouterr().err


def test_eight_threads_writing_at_once_lose_nothing(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite")
    written, errors = [], []

    def writer(k):
        try:
            for i in range(25):
                cid = _comparison(store, f"m{k}", "other", prompt=f"{k}-{i}")
                store.add_vote(cid, "left")
                written.append(cid)
        except Exception as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    stored = ReviewStore(tmp_path / "r.sqlite").history(limit=10_000)
    assert len(stored) == 200 and {i["id"] for i in stored} == set(written)
    assert all(len(i["votes"]) == 1 for i in stored)


WRITER = """
import sys
from comparer.reviews.store import NewComparison, ReviewStore
store = ReviewStore(sys.argv[1])
i = 0
while True:
    cid = store.start_comparison(NewComparison("p%d" % i, "a", "b", {}))
    store.add_vote(cid, "left")
    print(cid, flush=True)
    i += 1
"""


def test_a_process_killed_during_writes_leaves_every_committed_row_readable(tmp_path):
    db = tmp_path / "r.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    committed = []
    deadline = time.time() + 30
    while len(committed) < 60 and time.time() < deadline:
        committed.append(proc.stdout.readline().strip())
    proc.kill()
    proc.wait()
    committed += [line.strip() for line in proc.stdout.readlines() if line.strip()]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {i["id"]: i for i in ReviewStore(db).history(limit=100_000)}
    assert len(committed) >= 60 and all(cid in stored and stored[cid]["votes"] for cid in committed)


def test_two_unrelated_outputs_read_side_by_side_with_no_strike_through():
    """Unrelated texts: both shown whole in two columns, nothing marked, and the view says so."""
    left = "The lighthouse keeper climbed the stairs at dusk <b>slowly</b>."
    right = "Quarterly revenue rose by four percent in the northern region."
    html = diff_html(left, right)
    assert "No meaningful overlap" in html and "<mark" not in html and "line-through" not in html
    assert "&lt;b&gt;slowly&lt;/b&gt;" in html and "<b>slowly" not in html and "Quarterly revenue" in html
    assert html.index("lighthouse") < html.index("Quarterly")  # left column first


def test_a_shared_passage_is_highlighted_in_both_columns_and_a_chance_word_is_not():
    from comparer.reviews.diff import shared_passages, side_by_side_html

    left = "Once upon a time there was a fox who lived in the woods and the river ran cold."
    right = "In the city a man said that there was a fox who lived in the woods near him."
    (passage,) = shared_passages(left, right)  # the lone shared "a" before it is chance, left plain
    assert (passage.left_start, passage.right_start, passage.words) == (4, 7, 9)
    html = side_by_side_html(left, right, "left: m", "right: t")
    marks = [chunk.split(">", 1)[1].split("</mark>")[0] for chunk in html.split("<mark")[1:]]
    assert [m.strip() for m in marks] == ["there was a fox who lived in the woods"] * 2
    assert "left: m" in html and "right: t" in html and "1 shared passage" in html


def test_near_identical_outputs_mark_every_common_word_and_keep_the_differing_ones_plain():
    html = diff_html("the cat sat <here>", "the dog sat <here>")
    assert '<span>cat </span>' in html and '<span>dog </span>' in html and "&lt;here&gt;</mark>" in html
    assert "line-through" not in html and "No meaningful overlap" not in html


def _synthetic_votes(strengths: dict, n: int, seed: int) -> list[tuple]:
    """Votes drawn from a Bradley-Terry model with the given log-strengths; 10 % of votes are ties."""
    import math
    import random

    rng, models, rows = random.Random(seed), list(strengths), []
    for _ in range(n):
        left, right = rng.sample(models, 2)
        p_left = 1 / (1 + math.exp(strengths[right] - strengths[left]))
        vote = "tie" if rng.random() < 0.1 else ("left" if rng.random() < p_left else "right")
        rows.append((left, right, vote, 1))
    return rows


def test_bradley_terry_recovers_a_known_order_with_bootstrap_intervals_around_each_estimate():
    from comparer.reviews.leaderboard import ELO_PER_LOGIT, leaderboard

    strengths = {"strong": 1.2, "good": 0.4, "fair": -0.3, "weak": -1.3}
    ratings = leaderboard(_synthetic_votes(strengths, 1500, seed=3))
    assert [r.model for r in ratings] == ["strong", "good", "fair", "weak"]
    assert [r.rank for r in ratings] == [1, 2, 3, 4]  # 1,500 votes separate the intervals
    gap = ratings[0].rating - ratings[-1].rating
    assert abs(gap - ELO_PER_LOGIT * 2.5) < 60  # true gap 2.5 log-odds = 434 Elo points
    assert all(r.low < r.rating < r.high for r in ratings)
    assert abs(sum(r.rating for r in ratings) / 4 - 1000) < 1e-6  # 1000 = the average model
    few = leaderboard(_synthetic_votes(strengths, 12, seed=3))
    assert all(f.high - f.low > r.high - r.low for f, r in zip(sorted(few, key=lambda r: r.model),
                                                                 sorted(ratings, key=lambda r: r.model)))


def test_ties_and_both_bad_count_as_half_a_win_for_each_side():
    import math

    import numpy as np

    from comparer.reviews.leaderboard import fit_bradley_terry, games, leaderboard

    rows = [("a", "b", "left", 2), ("b", "a", "tie", 1), ("a", "b", "both_bad", 1)]
    models, i, j, score, count = games(rows)
    theta = fit_bradley_terry(len(models), i, j, score, count, ridge=0.0)
    assert theta[0] - theta[1] == pytest.approx(math.log(3))  # a scored 3 of 4: odds 3 to 1
    even = leaderboard([("a", "b", "tie", 5), ("b", "a", "both_bad", 5)])
    assert [r.rating for r in even] == pytest.approx([1000.0, 1000.0])
    a = next(r for r in leaderboard(rows) if r.model == "a")
    assert (a.votes, a.wins, a.losses, a.ties, a.both_bad) == (4, 2, 0, 1, 1)
    assert np.isfinite(theta).all() and leaderboard([]) == []


def test_the_tally_follows_the_panes_and_says_what_its_win_rate_counts():
    """A is the model shown on the left most often (here the alphabetically later one); the rate's
    denominator is the decisive votes only, printed beside it; ties and both bad have their own columns."""
    from comparer.reviews.tally import tally_counts, tally_line, tally_markdown

    rows = [("mamba", "llama", "left", 2), ("mamba", "llama", "right", 1), ("llama", "mamba", "tie", 1),
            ("mamba", "llama", "both_bad", 3)]
    (t,) = tally_counts(rows)
    assert (t.model_a, t.model_b, t.a_wins, t.b_wins, t.ties, t.both_bad) == ("mamba", "llama", 2, 1, 1, 3)
    table = tally_markdown([t])
    header, _, row = table.splitlines()[:3]
    assert [c.strip() for c in row.strip("|").split("|")] == ["mamba", "llama", "2", "1", "1", "3",
                                                             "67% of 3 (21%–94%)"]
    assert "A (left)" in header and "both bad" in header and "ties and both bad are left out" in table
    assert "7 votes" in tally_line(t) and "3 decisive votes" in tally_line(t)
    (flipped,) = tally_counts([("llama", "mamba", "left", 1)] * 2 + [("mamba", "llama", "left", 1)])
    assert (flipped.model_a, flipped.a_wins, flipped.b_wins) == ("llama", 2, 1)


def test_the_leaderboard_is_exported_as_csv_with_the_votes(tmp_path):
    import csv

    db = tmp_path / "r.sqlite"
    store = ReviewStore(db)
    for left, right, vote in [("a", "b", "left"), ("b", "a", "right"), ("a", "c", "left"), ("b", "c", "left"),
                              ("c", "b", "tie")]:
        store.add_vote(_comparison(store, left, right), vote)
    store.start_comparison(NewComparison("unvoted", "a", "z", {}))  # no vote: not on the board
    out = tmp_path / "board.csv"
    assert reviews_cli(["export", "--format", "leaderboard-csv", "--out", str(out), "--db", str(db)]) == 0
    rows = list(csv.DictReader(open(out)))
    assert [r["model"] for r in rows] == ["a", "b", "c"]
    assert [(r["votes"], r["wins"], r["losses"], r["ties"]) for r in rows] == [
        ("3", "3", "0", "0"), ("4", "1", "2", "1"), ("3", "0", "2", "1")]
    assert all(float(r["rating_low_95"]) <= float(r["rating"]) <= float(r["rating_high_95"]) for r in rows)


def test_history_filters_by_model_on_either_side_and_by_its_wins_and_losses(tmp_path):
    """The vote filter is relative to a model, so a blind run that put it on the right still counts; an
    unvoted blind comparison is never matched by a model filter (that would name its models)."""
    import gradio as gr

    from comparer.ui.review import ReviewService

    store = ReviewStore(tmp_path / "r.sqlite")
    won_left, won_right, lost, other = (_comparison(store, *p) for p in [("m", "t"), ("t", "m"), ("m", "t"),
                                                                          ("x", "y")])
    for cid, vote in [(won_left, "left"), (won_right, "right"), (lost, "right"), (other, "left")]:
        store.add_vote(cid, vote)
    blind = store.start_comparison(NewComparison("secret", "m", "t", {}, blind=True))
    assert {i["id"] for i in store.history(model="m")} == {won_left, won_right, lost}
    assert {i["id"] for i in store.history(model="m", vote="won")} == {won_left, won_right}
    assert [i["id"] for i in store.history(model="m", vote="lost")] == [lost]
    assert blind in {i["id"] for i in store.history()} and blind not in {i["id"] for i in store.history(pair=("m", "t"))}
    service = ReviewService(store)
    rows, tally_md, choices = service.history("t", "", "won")
    assert [r[-1] for r in rows["data"]] == [lost] and rows["headers"][-1] == "id"
    assert choices.constructor_args["choices"] == ["", "m", "t", "x", "y", "m vs t", "x vs y"]
    assert "| m | t | 2 | 1 |" in tally_md and "| x |" not in tally_md
    with pytest.raises(gr.Error, match="pick one model"):
        service.history("", "", "won")


def test_a_history_row_shows_status_verdict_tags_note_and_both_speeds_as_text(tmp_path):
    from comparer.ui.review import HISTORY_COLUMNS, ReviewService

    store = ReviewStore(tmp_path / "r.sqlite")
    cid = store.start_comparison(NewComparison("p", "mamba", "llama", {}, preset="small"))
    store.finish_comparison(cid, "x", "y", {"decode_tok_per_s": 151.26}, {"decode_tok_per_s": None}, "stopped")
    store.add_vote(cid, "right", ["fluent", "repetition"], "<b>short</b> " + "n" * 300)
    rows, *_ = ReviewService(store).history()
    row = dict(zip(HISTORY_COLUMNS, rows["data"][0]))
    assert (row["status"], row["vote"], row["tags"]) == ("stopped", "llama better", "fluent, repetition")
    assert row["decode tok/s (left / right)"] == "151.3 / –" and row["id"] == cid
    assert row["note"].startswith("<b>short</b> nnn") and row["note"].endswith("…") and len(row["note"]) == 120


class LocalFolderApi:
    """Stands in for HfApi so the scheduler commits into a local folder instead of the Hub."""

    def __init__(self, target):
        self.target, self.commits = target, 0

    def create_repo(self, repo_id, **kwargs):
        from types import SimpleNamespace

        return SimpleNamespace(repo_id=repo_id)

    def create_commit(self, repo_id, operations, **kwargs):
        for op in operations:
            dest = self.target / repo_id / op.path_in_repo
            dest.parent.mkdir(parents=True, exist_ok=True)
            with op.as_file() as f:
                dest.write_bytes(f.read())
        self.commits += 1

    def run_as_future(self, fn, *args, **kwargs):
        from concurrent.futures import Future

        future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def test_sync_pushes_a_consistent_snapshot_to_the_configured_repository(tmp_path, monkeypatch):
    from comparer.reviews.sync import start_sync_from_env

    store = ReviewStore(tmp_path / "live.sqlite")
    cid = _comparison(store)
    store.add_vote(cid, "left")
    monkeypatch.setenv("COMPARER_SYNC_REPO", "team/reviews")
    monkeypatch.setenv("COMPARER_SYNC_DIR", str(tmp_path / "sync"))
    api = LocalFolderApi(tmp_path / "hub")
    scheduler = start_sync_from_env(store, hf_api=api)  # pushes once at start, then every N minutes
    try:
        later = _comparison(store, "late", "comer")
        store.add_vote(later, "tie")
        scheduler.trigger().result(timeout=30)
    finally:
        scheduler.stop()
    pushed = ReviewStore(tmp_path / "hub" / "team" / "reviews" / "reviews" / "reviews.sqlite")
    assert api.commits >= 1 and pushed.get(cid)["votes"][0]["vote"] == "left"
    assert pushed.get(later)["votes"][0]["vote"] == "tie"


def test_sync_is_off_unless_configured(tmp_path, monkeypatch):
    from comparer.reviews.sync import start_sync_from_env

    monkeypatch.delenv("COMPARER_SYNC_REPO", raising=False)
    assert start_sync_from_env(ReviewStore(tmp_path / "r.sqlite")) is None


def test_history_filters_before_it_limits(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite")
    old = _comparison(store, "a", "b")
    store.add_vote(old, "tie")
    for _ in range(3):
        store.add_vote(_comparison(store, "c", "d"), "left")
    assert [i["id"] for i in store.history(vote="tie", limit=1)] == [old]
    assert [i["id"] for i in store.history(pair=("b", "a"), limit=1)] == [old]


def test_a_note_with_html_or_markdown_links_is_shown_as_text_in_the_review_tab(tmp_path):
    """<img>, <a> and Markdown links in a note come back escaped: the browser fetches nothing."""
    from comparer.ui.review import ReviewService

    store = ReviewStore(tmp_path / "r.sqlite")
    cid = _comparison(store)
    note = '<img src="http://attacker.example/x.png"> <a href="http://e.example">x</a> [y](http://f.example) ![z](http://g.example/i.png)'
    store.add_vote(cid, "left", ["fluent"], note)
    *_, header, _diff = ReviewService(store).reopen(cid)
    assert "<img" not in header and "<a " not in header and "](http" not in header and "://" not in header
    assert "&lt;img" in header and "attacker" in header


def test_a_blind_comparison_names_no_model_anywhere_until_its_vote(tmp_path):
    """History rows, re-open and exports of an unvoted blind comparison hide both models; a vote reveals."""
    from comparer.ui.review import ReviewService

    store = ReviewStore(tmp_path / "r.sqlite")
    cid = store.start_comparison(NewComparison("moon?", "mamba-x", "pythia-y", {"max_new_tokens": 8}, preset="small",
                                               blind=True))
    store.finish_comparison(cid, "a says", "b says", {"ttft_s": 0.1, "model_id": "mamba-x"}, {"ttft_s": 0.2}, "done")
    service = ReviewService(store)
    rows, _tally, _pairs = service.history()
    *_, header, _diff = service.reopen(cid)
    exported = service.export_file("jsonl")[0] + service.export_file("csv")[0]
    for shown in (str(rows), header, exported):
        assert "mamba-x" not in shown and "pythia-y" not in shown, shown[:300]
    store.add_vote(cid, "right", [], "")
    *_, header, _diff = service.reopen(cid)
    assert "mamba-x" in header and "pythia-y" in header


def test_a_revote_moves_the_tally_and_filters_and_a_version_2_store_keeps_its_latest_votes(tmp_path):
    """The latest vote lives on its comparison (indexed queries, no re-read of the history): a second vote
    replaces the first in the tally and in the 'latest vote' filter; an older file is migrated with its
    votes' latest values; tags are capped per vote."""
    from comparer.reviews.store import MAX_TAGS
    from comparer.reviews.tally import tally_counts

    path = tmp_path / "v2.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(f"{MIGRATIONS[0]} {MIGRATIONS[1]} PRAGMA user_version = 2;")
    conn.execute("INSERT INTO comparisons (id, created_at, prompt, left_model, right_model, settings) "
                 "VALUES ('old', 1.0, 'p', 'a', 'b', '{}')")
    conn.execute("INSERT INTO votes (comparison_id, created_at, vote) VALUES ('old', 1.0, 'tie')")
    conn.execute("INSERT INTO votes (comparison_id, created_at, vote) VALUES ('old', 2.0, 'left')")
    conn.commit()
    conn.close()
    store = ReviewStore(path)
    assert [i["id"] for i in store.history(vote="left")] == ["old"] and not store.history(vote="tie")
    assert tally_counts(store.latest_votes())[0].a_wins == 1
    store.add_vote("old", "right")
    assert [i["id"] for i in store.history(vote="right")] == ["old"] and not store.history(vote="left")
    t = tally_counts(store.latest_votes(pair=("b", "a")))[0]
    assert (t.a_wins, t.b_wins) == (0, 1)
    cids = [_comparison(store, prompt=f"p{i}") for i in range(5)]
    assert [i["id"] for i in store.history(limit=2, offset=1)] == cids[::-1][1:3]
    with pytest.raises(ReviewError, match="at most"):
        store.add_vote(cids[0], "left", [f"t{i}" for i in range(MAX_TAGS + 1)])


def test_comparisons_left_running_by_a_dead_process_are_marked_interrupted_at_start(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite")
    running = store.start_comparison(NewComparison("p", "a", "b", {}))
    finished = _comparison(store)
    assert store.mark_interrupted() == 1
    assert store.get(running)["status"] == "interrupted" and store.get(finished)["status"] == "done"


def test_a_note_with_a_lone_surrogate_gets_a_clear_error_not_a_crash(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite")
    cid = _comparison(store)
    with pytest.raises(ReviewError, match="surrogate"):
        store.add_vote(cid, "left", [], "bad \ud800 note")
    assert store.add_vote(cid, "left", [], "fine note") > 0
