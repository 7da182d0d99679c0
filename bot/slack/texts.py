"""Every sentence the bot says in Slack, in one place (wording changes never touch logic)."""

from __future__ import annotations

# --- answers -------------------------------------------------------------------------------------
EMPTY_QUESTION = "Ask me a question in words and I'll do my best to answer it."
ENGINE_FAILED = "Sorry, I couldn't work out an answer just now. A member of our support team will follow up here."
HANDOFF_CUSTOMER = "I've passed your question to our support team; a human will follow up in this thread."
LATE_APOLOGY = (
    "Sorry for the long wait: I couldn't answer this in time, so I've passed it to our support team; a human will "
    "follow up in this thread."
)
NOT_TAKEN = "Sorry, I couldn't take your question just now. Please try again in a few minutes."
HANDOFF_ALREADY = "Our support team already has your question; a human will follow up in this thread."
SOURCES_HEADER = "*Sources*"
TRUNCATED_NOTE = "(Your message was long, so I only read the first {limit:,} characters.)"

BUTTON_HELPFUL = "Helpful"
BUTTON_NOT_HELPFUL = "Not helpful"
BUTTON_HUMAN = "Talk to a human"
BUTTON_SOMETHING_ELSE = "Something else"
CLARIFY_PICKED = "You chose: {choice}"
CLARIFY_ALREADY = "This question has already been answered."
CLARIFY_NOT_YOURS = "Only the person who asked can choose here. Ask your own question and I'll help."

SOURCE_LABELS = {
    "intent": "curated answer",
    "retrieval": "from the knowledge base",
    "clarify": "clarifying question",
    "handoff": "handed off to a human",
}

# --- ratings ------------------------------------------------------------------------------------
RATED_HELPFUL = "Thanks for the feedback, glad it helped!"
RATED_NOT_HELPFUL = "Thanks for the feedback. Press *Talk to a human* if you'd like a person to help."
RATING_FAILED = "Sorry, I couldn't save your feedback just now. Please try again."
ANSWER_GONE = "Sorry, I can't find that answer any more."
NOT_AN_ANSWER = "That message is not one of my answers, so there is nothing to correct."

# --- agents -------------------------------------------------------------------------------------
NOT_AN_AGENT = "Only support agents can correct answers. Use *Helpful* / *Not helpful* to tell us how it went."
CORRECTION_SAVED = "Thanks, your correction is saved and will be used in the next retraining."
CORRECTION_FAILED = "Couldn't save the correction just now; please try again."
MODAL_TITLE = "Correct the answer"
MODAL_SUBMIT = "Save"
MODAL_CLOSE = "Cancel"
MODAL_QUESTION = "*Question*\n{question}"
MODAL_PREDICTED = "The bot answered as *{intent}* ({confidence})."
MODAL_INTENT_LABEL = "Right intent"
MODAL_INTENT_PLACEHOLDER = "Choose an intent"
MODAL_ANSWER_LABEL = "Better answer (optional)"
MODAL_ANSWER_HINT = "What the bot should have said."
OUT_OF_SCOPE_OPTION = "Out of scope (hand off)"

AGENT_HANDOFF_HEADER = ":raising_hand: *Hand-off* from <@{user}> ({reason})"
AGENT_HANDOFF_QUESTION = "*Question*\n>{question}"
AGENT_HANDOFF_GUESS = "*Bot's best guess:* {guess}"
AGENT_HANDOFF_NO_GUESS = "*Bot's best guess:* none"
AGENT_HANDOFF_LINK = "<{link}|Open the thread>"
HANDOFF_REASONS = {
    "abstained": "the bot was not confident",
    "customer_request": "the customer asked for a human",
    "engine_error": "the bot failed to answer",
}

# --- App Home -----------------------------------------------------------------------------------
HOME_TITLE = "Support bot"
HOME_CUSTOMER = (
    "Hi! I answer support questions.\n"
    "• Send me a direct message, mention me, or post in a support channel.\n"
    "• I reply in the thread; press *Helpful* or *Not helpful* (or react :+1: / :-1:) so I can learn.\n"
    "• Press *Talk to a human* at any time to reach our support team."
)
HOME_AGENT_INTRO = "Numbers for the support bot. Rate and correct answers in the threads to improve it."
HOME_PERIOD = "*{label}*"
HOME_TODAY = "Today"
HOME_WEEK = "This week"
HOME_COUNTS = (
    "Questions: *{questions}*\nAnswered by the bot: *{answered}* ({answered_rate})\n"
    "Handed off: *{handed_off}* ({handoff_rate})\nRated: *{rated}*, helpful: *{helpful}* ({helpful_rate})"
)
HOME_UNHELPFUL = "*Intents most often rated unhelpful (this week)*"
HOME_UNHELPFUL_NONE = "No unhelpful ratings this week."
HOME_MODEL = "*Model*"
HOME_NO_MODEL = "No trained model yet: answers come from the base encoder and the knowledge base."
HOME_STATS_FAILED = "Statistics are unavailable right now."

# --- the agents' work lists (review queue, new-intent proposals, digest) -------------------------------
REVIEW_HEADER = "*Review queue* ({waiting} questions waiting): the questions whose label helps the next model most."
REVIEW_EMPTY = "Nothing to review: the nightly job fills the queue from the logs."
REVIEW_PLACEHOLDER = "Label it..."
REVIEW_DETAILS = "bot: {source} · why: {reasons}"
REVIEW_NO_REASON = "uncertain"
REVIEW_SAVED = "Thanks: labelled `{intent}`. The next nightly retraining learns it."
NEW_INTENT_OPTION = "New intent..."
PROPOSAL_HEADER = "*{n} questions like these have no intent: make it one?*"
PROPOSAL_NEAREST = "Closest intent today: `{intent}`"
PROPOSAL_ACCEPT = "Make it an intent"
PROPOSAL_DISMISS = "Dismiss"
PROPOSAL_ACCEPTED = "Accepted by {who} as `{intent}`: learnt at the next nightly retraining."
PROPOSAL_DISMISSED = "Dismissed by {who}."
PROPOSAL_GONE = "This proposal was already decided."
PROPOSALS_HOME = "*New-intent proposals* ({n} waiting)"
NEW_INTENT_TITLE = "New intent"
NEW_INTENT_SUBMIT = "Create"
NEW_INTENT_QUESTIONS = "*Questions*"
NEW_INTENT_NAME = "Intent name"
NEW_INTENT_NAME_HINT = "Lower case words, e.g. damaged_card."
NEW_INTENT_ANSWER = "Answer"
NEW_INTENT_ANSWER_HINT = "What the bot will answer to these questions once it has learnt the intent."
NEW_INTENT_BAD_NAME = "Give a name of letters, digits and underscores (not the out-of-scope label)."
NEW_INTENT_NO_ANSWER = "Write the answer the bot should give."
NOT_AN_AGENT_LABEL = "Only support agents can label questions and decide new-intent proposals."
LABEL_FAILED = "Sorry, the label could not be saved. Please try again."
DIGEST_NONE = "*Nightly digest*: none yet (the nightly job posts one after each run)."

# --- the assistant side panel ------------------------------------------------------------------------------
ASSISTANT_GREETING = "Hi! Ask me anything about your account, billing or our product; I answer in this thread."
ASSISTANT_PROMPTS_TITLE = "Try asking"
ASSISTANT_PROMPTS = (
    ("Reset my password", "How do I reset my password?"),
    ("A billing question", "Where can I find my invoices?"),
    ("Talk to a person", "I would like to talk to a person."),
)
ASSISTANT_THINKING = "is thinking..."
