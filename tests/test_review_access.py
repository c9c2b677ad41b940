"""Reviews are private on a public deployment: each visitor (session) sees and votes on only their own
comparisons; the whole history, re-opening others' comparisons and exports need a reviewer named by the
operator (here through Gradio's login, COMPARER_AUTH; on a Space through OAuth). Through the API, which
obeys the same rule."""

import pytest

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def public_app(offline_dirs, tmp_path_factory):
    from comparer.ui.app import create_app, launch_kwargs
    from tests.test_app_api import _free_port

    patch = pytest.MonkeyPatch()
    patch.setenv("COMPARER_PUBLIC", "1")
    patch.setenv("COMPARER_REVIEWERS", "reviewer")
    patch.setenv("COMPARER_AUTH", "reviewer:s3cret,visitor:guest")
    demo = create_app("offline", "offline", "cpu", db_path=tmp_path_factory.mktemp("db") / "r.sqlite")
    port = _free_port()
    demo.queue(max_size=8).launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                                  ssr_mode=False, quiet=True, **launch_kwargs())
    yield f"http://127.0.0.1:{port}/"
    demo.close()
    patch.undo()


def _client(url, user, password):
    return gradio_client.Client(url, auth=(user, password), verbose=False)


def test_a_visitor_sees_and_votes_on_only_their_own_comparisons_and_a_reviewer_sees_all(public_app):
    alice, bob = _client(public_app, "visitor", "guest"), _client(public_app, "visitor", "guest")
    *_, alice_id = alice.predict("Alice's private prompt about the sea", max_new_tokens=4, api_name="/compare")
    *_, bob_id = bob.predict("Bob's prompt", max_new_tokens=4, api_name="/compare")
    rows, *_ = bob.predict("", "", "", api_name="/history")
    shown = str(rows)
    assert "Bob's prompt" in shown and "Alice" not in shown
    with pytest.raises(Exception, match="No comparison"):
        bob.predict(alice_id, api_name="/reopen")
    with pytest.raises(Exception, match="in your session"):
        bob.predict(alice_id, "left", [], "", api_name="/vote")
    with pytest.raises(Exception, match="reviewer"):
        bob.predict("csv", api_name="/export")
    assert "Vote recorded" in alice.predict(alice_id, "left", [], "mine", api_name="/vote")[0]

    reviewer = _client(public_app, "reviewer", "s3cret")
    rows, *_ = reviewer.predict("", "", "", api_name="/history")
    assert "Alice's private prompt" in str(rows) and "Bob's prompt" in str(rows)
    prompt, *_ = reviewer.predict(bob_id, api_name="/reopen")
    assert prompt == "Bob's prompt"
    exported, name = reviewer.predict("jsonl", api_name="/export")
    assert name.startswith("comparer-reviews-") and name.endswith(".jsonl") and "/" not in name
    assert "Alice's private prompt" in exported and "owner" not in exported


def test_a_wrong_password_gets_no_session_at_all(public_app):
    """COMPARER_AUTH puts Gradio's login in front of the whole app."""
    with pytest.raises(Exception):
        _client(public_app, "reviewer", "wrong")


def test_the_space_asks_for_hugging_face_sign_in(tmp_path):
    import yaml

    from comparer import space

    folder = space.build(tmp_path / "space")
    meta = yaml.safe_load((folder / "README.md").read_text().split("---\n")[1])
    assert meta["hf_oauth"] is True
