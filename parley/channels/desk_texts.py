"""Every fixed text the reps see in Slack's desk (headers, modals, App Home), in one place.

They are neutral Markdown (``**bold**``), rendered as Slack mrkdwn where they are laid out; English
for now, kept together so that a ``texts:`` section of the settings can take them
over (one ``DeskTexts`` per language) without touching the code that lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class DeskTexts:
    # The thread header's buttons and state line.
    claim: str = "Claim"
    hand_back: str = "Hand back to bot"
    resolve: str = "Resolve"
    send_article: str = "Send article"
    wrong_answer: str = "Wrong answer?"
    resolve_confirm_title: str = "Resolve?"
    resolve_confirm_text: str = "The customer will be asked to rate the help."
    cancel: str = "Cancel"
    waiting: str = ":hourglass_flowing_sand: **Waiting for a person** (requested {ago})"
    claimed: str = ":large_green_circle: **Claimed by {actor}**"
    handed_back: str = ":robot_face: **Handed back to the bot** by {actor}"
    resolved: str = ":white_check_mark: **Resolved** by {actor}"
    rated: str = " · rated {rating}/5"
    bot_answered: str = "**Bot answered** “{question}”: {answer}"
    # The article modal (wrong answer, send article).
    label_title: str = "Wrong answer?"
    label_intro: str = "The bot answered “{question}” with:\n\n> {answer}\n\nWhich article should it have used?"
    label_submit: str = "Label"
    article_label: str = "Article"
    article_placeholder: str = "Search the knowledge base"
    no_article: str = "None fits: a person should answer"
    labelled: str = (":white_check_mark: Labelled: that answer should have been **{article}**. "
                     "`parley train` will learn from it.")
    label_gone: str = "That answer is no longer in the conversation log, so it cannot be labelled."
    unknown_article: str = "There is no such article any more: search again."
    send_title: str = "Send an article"
    send_intro: str = "The article goes to the customer as your reply, through the conversation's channel."
    send_submit: str = "Send"
    send_unknown_thread: str = "This message is not in a conversation's thread: use the shortcut on a message in one."
    done: str = "Done"
    close: str = "Close"
    # App Home.
    home_title: str = "Open requests"
    home_empty: str = "Nobody is waiting for a person right now. :tada:"
    home_request: str = "**{channel}** customer {customer}, waiting **{wait}**: {reason}"
    home_more: str = "…and {count} more, oldest first above."
    home_updated: str = "Updated {at} UTC, and again whenever a request comes or goes."


DESK_TEXTS = DeskTexts()
