"""Every fixed text the reps read in the desk: the thread's first message, the notes posted in it,
its header and modals, and App Home. English here; ``texts.desk`` in the settings replaces any of
them (the reps' own language, ``texts.desk_language``, which also names the weekdays).

They are neutral Markdown (``**bold**``), rendered as Slack mrkdwn where they are laid out; a
text's ``{placeholders}`` are the ones its English text has (checked at start).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from string import Formatter


@dataclass(frozen=True, slots=True, kw_only=True)
class DeskTexts:
    language: str = "en"  # the reps' language: weekday names in {day}
    # The thread's first message (``parley.core.handoff.header``).
    needs_person: str = "**Customer on {channel}** ({customer}) needs a person: {reason}."
    outside_hours_note: str = ("Outside business hours: the customer was told people are back on {day} at "
                               "{time} ({zone}).")
    last_messages: str = "**Last messages:**"
    speaker_customer: str = "Customer"
    speaker_bot: str = "Bot"
    speaker_agent: str = "Support"
    reply_hint: str = ("Reply in this thread to write to the customer; the first reply claims the conversation. "
                       "Messages starting with `{prefix}` are internal notes and are not sent.")
    # Notes in the thread (``parley.core.relay``).
    customer_attachments: str = "[sent {count} attachment(s)]"
    customer_empty: str = "[an empty message]"
    claimed_note: str = "Claimed by {actor}."
    handed_back_note: str = "Handed back to the bot by {actor}."
    resolved_note: str = "Resolved by {actor}. The customer was asked for a rating."
    rated_note: str = "The customer rated the help {score}/5."
    reminded_note: str = "Still unclaimed after {minutes} min; the customer was told again."
    article_note: str = "{actor} sent an article to the customer: {title}"
    # A rep's attachment Parley cannot fetch from Slack (a post, an external or Slack Connect file).
    files_not_sent: str = ("Not sent to the customer: an attachment Slack does not let Parley fetch; paste "
                           "its text or a link instead.")
    # Files that were not passed on (``parley.worker.files``); {files} names each, with the reason.
    files_refused: str = "Not passed on: {files}."
    back_with_bot: str = ("Not sent: this conversation is back with the bot ({state}). "
                          "The customer can ask for a person again.")
    already_done: str = "Already done: {reason}."
    already_done_by: str = "Already done by {actor}: {reason}."
    unknown_action: str = "Unknown action {action}."
    expired: str = "Not sent: this conversation has expired."
    first_post_failed: str = "**Customer on {channel}** needs a person (the first post failed)."
    # A rep's reply the customer's channel did not take (``parley.worker.pipeline``); {reason} is
    # the platform's, in English.
    undelivered: str = "Could not deliver this to the customer: {reason}."
    undelivered_retrying: str = "Could not deliver this to the customer yet ({reason}); retrying."
    undelivered_refused: str = "Could not deliver this to the customer: the platform refused it ({reason})."
    # The thread header's buttons and state line.
    claim: str = "Claim"
    hand_back: str = "Hand back to bot"
    resolve: str = "Resolve"
    send_article: str = "Send article"
    wrong_answer: str = "Wrong answer?"
    resolve_confirm_title: str = "Resolve?"
    resolve_confirm_text: str = "The customer will be asked to rate the help."
    cancel: str = "Cancel"
    waiting: str = ":hourglass_flowing_sand: **Waiting for a person** (requested {wait} ago)"
    under_a_minute: str = "under a minute"  # a wait: otherwise "12 min", "3 h 05 min", "2 d 4 h"
    a_rep: str = "a rep"  # who acted, when the log does not say
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
    # The ``/parley`` command's private answers.
    command_usage: str = ("**/parley ask QUESTION**: search the knowledge base (only you see the answer)\n"
                          "**/parley label ARTICLE**: the bot's last answer in the conversation you are working "
                          "on should have been this article (its id, e.g. `reset-password`); the **Wrong answer?** "
                          "button on a thread's header labels one answer you choose")
    command_no_match: str = "Nothing in the knowledge base matches {question}."
    command_also_close: str = "Also close: {articles}"
    command_no_article: str = "There is no article `{article}`. Try `/parley ask` to find its id."
    command_no_conversation: str = ("Claim or reply in a conversation's thread first: the label goes to the "
                                    "conversation you work on.")
    command_nothing_to_label: str = ("The bot has not answered anything in that conversation yet, so there is "
                                     "nothing to label.")
    command_labelled: str = ("Labelled: the bot's last answer should have been `{article}`. "
                             "`parley train` will learn from it.")


DESK_TEXTS = DeskTexts()


def placeholders(text: str) -> set[str]:
    """The ``{names}`` a text uses; ``ValueError`` for a lone brace, and for a conversion or format
    spec (``{actor!r}``, ``{score:d}``): a text's values are strings, shown as they are."""
    names = set()
    for _, name, spec, conversion in Formatter().parse(text):
        if name is None:
            continue
        if spec or conversion:
            raise ValueError(f"{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}: "
                             f"write {{{name}}} alone (no conversion or format spec)")
        names.add(name)
    return names


# Each text's placeholders, as its English text has them: an admin's text may use these only.
ALLOWED = {field.name: placeholders(getattr(DESK_TEXTS, field.name)) for field in fields(DeskTexts)
           if field.name != "language"}
