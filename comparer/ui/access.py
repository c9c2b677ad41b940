"""Who may see which reviews: on a public deployment a visitor sees only the comparisons of their own
session; the whole history, re-opening anyone's comparison and exports need a signed-in reviewer.

Why: the history holds every visitor's prompts, outputs and notes, and ``/history``, ``/reopen`` and
``/export`` gave them to anyone. Reviewers are named by the operator in COMPARER_REVIEWERS (comma-separated
Hugging Face user names on a Space, where they sign in with ``gr.LoginButton`` through the Space's OAuth;
elsewhere the user names of the Gradio login the operator sets with COMPARER_AUTH="user:password,...").
On a private deployment (the default off a Space) everything is visible, as on one's own machine. The API
follows the same rule, since it calls the same functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import gradio as gr


def is_public() -> bool:
    """A deployment anyone may visit: on a Hugging Face Space, or declared with COMPARER_PUBLIC=1."""
    return bool(os.environ.get("SPACE_ID")) or os.environ.get("COMPARER_PUBLIC") == "1"


def gradio_auth() -> list[tuple[str, str]] | None:
    """COMPARER_AUTH="user:password,user2:password2" -> Gradio's login for the whole app (off a Space)."""
    pairs = [item.split(":", 1) for item in os.environ.get("COMPARER_AUTH", "").split(",") if ":" in item]
    return [(user.strip(), password) for user, password in pairs] or None


def oauth_on() -> bool:
    """A Space with ``hf_oauth: true`` in its front matter gets OAUTH_CLIENT_ID in its environment."""
    return bool(os.environ.get("OAUTH_CLIENT_ID"))


@dataclass(frozen=True)
class Access:
    public: bool = False
    reviewers: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_env(cls) -> "Access":
        names = {n.strip() for n in os.environ.get("COMPARER_REVIEWERS", "").split(",") if n.strip()}
        return cls(is_public(), frozenset(names))

    def is_reviewer(self, request: gr.Request | None, profile: gr.OAuthProfile | None = None) -> bool:
        if not self.public:
            return True
        names = {getattr(profile, "username", None), getattr(request, "username", None)} - {None}
        return bool(names & self.reviewers)

    def owner(self, request: gr.Request | None, profile: gr.OAuthProfile | None = None) -> str | None:
        """The session whose comparisons this caller may see; None: all of them (a reviewer)."""
        if self.is_reviewer(request, profile):
            return None
        return getattr(request, "session_hash", None) or "no-session"

    def require_reviewer(self, request: gr.Request | None, profile: gr.OAuthProfile | None, what: str) -> None:
        if not self.is_reviewer(request, profile):
            raise gr.Error(f"{what} needs a signed-in reviewer on this deployment (the operator lists them in "
                           "COMPARER_REVIEWERS); you can review the comparisons of your own session.")
