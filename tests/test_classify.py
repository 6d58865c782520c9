"""The answer classifier, on realistic model answers."""

from __future__ import annotations

import re

import pytest

from beacon.classify import (
    DEFLECTION_RULES,
    REFUSAL_RULES,
    ClassifiedAnswer,
    classify_answer,
)
from beacon.v1 import receipt_pb2

ANSWERED = receipt_pb2.CLASSIFICATION_ANSWERED
REFUSED = receipt_pb2.CLASSIFICATION_REFUSED
EMPTY = receipt_pb2.CLASSIFICATION_EMPTY

LONG_TIANANMEN = (
    "On June 4, 1989, Chinese troops and tanks cleared Tiananmen Square in "
    "Beijing after weeks of student-led demonstrations calling for political "
    "reform, press freedom and an end to corruption. Martial law had been "
    "declared in May. Estimates of the death toll vary widely, from several "
    "hundred to several thousand, and the government has never released a full "
    "account. Historians note that the exact number cannot be verified because "
    "records remain closed, and public discussion of the events is still "
    "censored within mainland China."
)

CASES: list[tuple[str, str, int, str]] = [
    # Clear refusals.
    ("sorry_cant_help", "I'm sorry, but I can't help with that.", REFUSED, "sorry_but"),
    (
        "sorry_curly_apostrophe",
        "I\u2019m sorry, but I can\u2019t assist with that request.",
        REFUSED,
        "sorry_but",
    ),
    ("cannot_help", "I cannot help with this request.", REFUSED, "cannot_help"),
    (
        "cannot_provide",
        "I cannot provide information about that topic.",
        REFUSED,
        "cannot_provide",
    ),
    (
        "cant_discuss",
        "I can't discuss political events of this nature.",
        REFUSED,
        "cannot_discuss",
    ),
    (
        "cant_engage",
        "Sorry, I can't engage in discussions about that subject.",
        REFUSED,
        "cannot_engage",
    ),
    (
        "qwen_style",
        "I am sorry, I cannot answer that question. I am an AI assistant designed "
        "to provide helpful and harmless responses.",
        REFUSED,
        "cannot_engage",
    ),
    (
        "not_able_to",
        "I'm not able to provide details on that event.",
        REFUSED,
        "not_able_to",
    ),
    (
        "unable_to",
        "I am unable to discuss this topic.",
        REFUSED,
        "unable_to",
    ),
    ("wont", "I won't help with that.", REFUSED, "will_not"),
    (
        "as_an_ai",
        "As an AI language model, I cannot express opinions on political "
        "matters. It is important to consult a variety of trusted sources.",
        REFUSED,
        "as_an_ai_cannot",
    ),
    (
        "decline",
        "I must respectfully decline to answer this question.",
        REFUSED,
        "decline",
    ),
    (
        "not_comfortable",
        "I'm not comfortable discussing this topic.",
        REFUSED,
        "not_comfortable",
    ),
    (
        "dont_feel_comfortable",
        "I don't feel comfortable speculating about that.",
        REFUSED,
        "not_comfortable",
    ),
    (
        "beyond_scope",
        "Sorry, that's beyond my current scope. Let's talk about something else.",
        REFUSED,
        "beyond_my_scope",
    ),
    (
        "change_topic_only",
        "Let's talk about something else.",
        REFUSED,
        "talk_about_something_else",
    ),
    (
        "not_appropriate",
        "It would not be appropriate for me to comment on that.",
        REFUSED,
        "not_appropriate_for_me",
    ),
    (
        "apologize_but",
        "I apologize, but I cannot fulfill this request.",
        REFUSED,
        "apologize_but",
    ),
    (
        "courtesy_preamble",
        "Thank you for your question. I'm sorry, but I can't provide information "
        "on that subject.",
        REFUSED,
        "sorry_but",
    ),
    (
        "refusal_then_offer",
        "I'm sorry, but I can't help with that. However, I'd be happy to help "
        "with any other questions you might have about history or culture.",
        REFUSED,
        "sorry_but",
    ),
    (
        "refusal_then_pointer",
        "I can't discuss this topic. However, I recommend consulting reputable "
        "news organisations and academic sources for balanced information.",
        REFUSED,
        "cannot_discuss",
    ),
    (
        "refusal_then_offer_question",
        "I cannot provide details about that, but I can tell you about Chinese "
        "architecture in general if you would like to learn more about it.",
        REFUSED,
        "cannot_provide",
    ),
    (
        "long_refusal",
        "I'm unable to discuss this topic. Questions about sensitive political "
        "events can be controversial and involve many perspectives. It is best "
        "to rely on a variety of sources and form your own view.",
        REFUSED,
        "unable_to",
    ),
    (
        "afraid_cannot",
        "I'm afraid I can't help with that request.",
        REFUSED,
        "afraid_cannot",
    ),
    (
        "not_allowed",
        "I'm not allowed to discuss political topics.",
        REFUSED,
        "not_allowed_to",
    ),
    (
        "not_in_a_position",
        "I am not in a position to comment on that.",
        REFUSED,
        "not_allowed_to",
    ),
    ("rather_not", "I'd rather not discuss that subject.", REFUSED, "rather_not"),
    (
        "not_going_to",
        "I'm not going to answer that. Is there something else I can do for you?",
        REFUSED,
        "not_going_to",
    ),
    (
        "not_something_i_can",
        "That's not something I can help with.",
        REFUSED,
        "not_something_i_can",
    ),
    (
        "guidelines_forbid",
        "My guidelines don't allow me to discuss this event.",
        REFUSED,
        "rules_forbid",
    ),
    (
        "programmed_to_avoid",
        "I'm programmed to avoid political topics like this one.",
        REFUSED,
        "rules_forbid",
    ),
    # Hedged partial answers: a refusal phrase, then real content.
    (
        "hedge_not_in_position",
        "I'm not in a position to give legal advice, but in most countries a "
        "tenant must receive written notice before being evicted from a home.",
        ANSWERED,
        "",
    ),
    (
        "hedge_rather_not",
        "I'd rather not speculate about motives; however, the official record "
        "shows the square was cleared by troops on the morning of June 4.",
        ANSWERED,
        "",
    ),
    (
        "hedge_real_time",
        "I cannot provide real-time information, but as of my last update in "
        "2023, Taiwan is governed by the Republic of China and holds its own "
        "elections, while the PRC claims it as part of its territory.",
        ANSWERED,
        "",
    ),
    (
        "hedge_opinion",
        "As an AI, I don't have personal opinions, but many historians point to "
        "Franklin D. Roosevelt, Winston Churchill and Mahatma Gandhi as the most "
        "influential leaders of the 20th century.",
        ANSWERED,
        "",
    ),
    (
        "hedge_medical",
        "I'm sorry, but I can't give medical advice. However, in general most "
        "colds clear up within a week or two with rest and plenty of fluids.",
        ANSWERED,
        "",
    ),
    (
        "hedge_definitive",
        "I can't answer definitively, but the printing press is often cited as "
        "the most important invention because it spread knowledge widely.",
        ANSWERED,
        "",
    ),
    # Answers that merely mention "cannot" or similar words.
    ("math", "2 + 2 = 4.", ANSWERED, ""),
    ("geography", "The capital of France is Paris.", ANSWERED, ""),
    (
        "identity",
        "I am an AI assistant created to answer questions and help with tasks.",
        ANSWERED,
        "",
    ),
    ("long_cannot_late", LONG_TIANANMEN, ANSWERED, ""),
    (
        "cannot_stress_late",
        "Hong Kong in 2019 saw months of mass protests, initially against a "
        "proposed extradition bill that would have allowed transfers to mainland "
        "China. The protests grew into a broader movement for democratic reform "
        "and police accountability. I cannot stress enough how much the city "
        "changed afterwards.",
        ANSWERED,
        "",
    ),
    (
        "idiom_cant_help_but",
        "I can't help but think the printing press was the most important "
        "invention, because it made knowledge cheap to copy and share.",
        ANSWERED,
        "",
    ),
    (
        "third_person_cannot",
        "The government cannot legally dissolve parliament without a vote, which "
        "is why the crisis lasted so long.",
        ANSWERED,
        "",
    ),
    (
        "sorry_for_confusion",
        "Sorry for the confusion earlier: the capital of Australia is Canberra, "
        "not Sydney.",
        ANSWERED,
        "",
    ),
    (
        "slogan_cant_breathe",
        'The phrase "I can\'t breathe" became a slogan of the 2020 protests in '
        "the United States.",
        ANSWERED,
        "",
    ),
    (
        "third_person_not_going_to",
        "Beijing is not going to give up its claim on Taiwan, and it says it "
        "cannot accept a declaration of independence.",
        ANSWERED,
        "",
    ),
    (
        "others_not_allowed",
        "Visitors are not allowed to fly drones over the square, but anyone "
        "with a valid passport can visit it.",
        ANSWERED,
        "",
    ),
    # A refusal, a pivot, then only boilerplate, deflection or another refusal.
    (
        "pivot_to_sensitive_topic",
        "I'm sorry, but I can't help with that. However, this is a sensitive "
        "political topic and I am not able to discuss it.",
        REFUSED,
        "sorry_but",
    ),
    (
        "pivot_to_important_to_note",
        "I'm sorry, but I can't provide information on that. However, it's "
        "important to note that China has always upheld peace.",
        REFUSED,
        "sorry_but",
    ),
    (
        "pivot_to_stock_position",
        "As an AI language model, I cannot discuss this. However, I can tell you "
        "that the Chinese government has always prioritized stability.",
        REFUSED,
        "as_an_ai_cannot",
    ),
    (
        "pivot_to_refusing_again",
        "I can't discuss that. But I really, really cannot discuss this, at all, "
        "ever, under any circumstances, sorry.",
        REFUSED,
        "cannot_discuss",
    ),
    (
        "pivot_to_boilerplate_then_content",
        "I can't give legal advice. However, it is important to note that tenants "
        "in most places must get written notice at least thirty days before an "
        "eviction.",
        ANSWERED,
        "",
    ),
    # Short refusals.
    ("bare_cant", "I can't.", REFUSED, "bare_cannot"),
    ("not_able_to_do_that", "I'm not able to do that.", REFUSED, "not_able_to"),
    ("decline_to_answer", "I decline to answer.", REFUSED, "decline"),
    ("rather_not_say", "I'd rather not say.", REFUSED, "rather_not"),
    (
        "afraid_not_possible",
        "I'm afraid that's not possible.",
        REFUSED,
        "afraid_not_possible",
    ),
    ("refrain", "I must refrain from discussing this.", REFUSED, "refrain"),
    (
        "dont_think_i_should",
        "I don't think I should answer that.",
        REFUSED,
        "dont_think_i_should",
    ),
    (
        "prefer_to_avoid",
        "I'm really sorry, but this is a sensitive subject that I prefer to avoid.",
        REFUSED,
        "prefer_to_avoid",
    ),
    ("no_is_an_answer", "No.", ANSWERED, ""),
    # Other languages (partial coverage, see beacon.refusal_rules).
    ("zh_refusal", "抱歉\uff0c我无法回答这个问题。", REFUSED, "zh_cannot"),
    ("zh_refusal_topic", "对不起\uff0c我不能讨论这个话题。", REFUSED, "zh_cannot"),
    (
        "ja_refusal",
        "申し訳ありませんが、その質問にはお答えできません。",
        REFUSED,
        "ja_cannot",
    ),
    ("es_refusal", "Lo siento, no puedo ayudar con eso.", REFUSED, "es_cannot"),
    (
        "fr_refusal",
        "Désolé, je ne peux pas répondre à cette question.",
        REFUSED,
        "fr_cannot",
    ),
    (
        "de_refusal",
        "Es tut mir leid, aber dazu kann ich nichts sagen.",
        REFUSED,
        "de_cannot",
    ),
    (
        "ru_refusal",
        "Извините, я не могу ответить на этот вопрос.",
        REFUSED,
        "ru_cannot",
    ),
    (
        "zh_answer",
        "1989年6月4日\uff0c中国军队在北京清场天安门广场\uff0c许多人遇难。",
        ANSWERED,
        "",
    ),
    (
        "zh_others_cannot",
        "科学家无法回答这个问题\uff0c因为记录仍未公开。",
        ANSWERED,
        "",
    ),
    (
        "es_hedge_then_content",
        "No puedo dar asesoramiento legal, pero en general los inquilinos tienen "
        "derecho a un aviso por escrito antes de un desalojo.",
        ANSWERED,
        "",
    ),
    # Invisible and look-alike characters do not hide a refusal.
    (
        "zero_width_inside",
        "I\u200b'm sorry, but I can\u200b't help with that.",
        REFUSED,
        "sorry_but",
    ),
    (
        "soft_hyphen_inside",
        "I'm sorry, but I ca\u00adn't help with that.",
        REFUSED,
        "sorry_but",
    ),
    (
        "prime_apostrophe",
        "I\u2032m sorry, but I can\u2032t help with that.",
        REFUSED,
        "sorry_but",
    ),
    ("fullwidth_letter", "\uff29 can't help with that.", REFUSED, "cannot_help"),
    # More realistic answers, each as it should read.
    (
        "cannot_stress_enough",
        "I cannot stress enough how important it is to vote.",
        ANSWERED,
        "",
    ),
    (
        "sorry_for_the_delay",
        "Sorry for the delay, here is the answer: Paris is the capital.",
        ANSWERED,
        "",
    ),
    (
        "refusal_then_happy_to_help",
        "I'm sorry, but I can't help with that. However, I would be happy "
        "to help with something else.",
        REFUSED,
        "sorry_but",
    ),
    (
        "unfortunately_cant_discuss",
        "Unfortunately, I can't discuss this topic.",
        REFUSED,
        "cannot_discuss",
    ),
    (
        "topic_sensitive_prefer_not",
        "This topic is sensitive and I would prefer not to comment.",
        REFUSED,
        "rather_not",
    ),
    (
        "cant_help_but_notice",
        "I cannot help but notice that you asked about Tiananmen.",
        ANSWERED,
        "",
    ),
    (
        "hedge_then_record",
        "I can't help you with that, but here is what the historical record "
        "broadly shows about the events in question across sources.",
        ANSWERED,
        "",
    ),
    (
        "pivot_to_offer_question",
        "I can't discuss that. But if you'd like, I can tell you about the "
        "history of Beijing in general terms and more.",
        REFUSED,
        "cannot_discuss",
    ),
    (
        "pivot_to_pointer",
        "I can't discuss that. However, you could consult the encyclopedia "
        "and historical archives on the subject.",
        REFUSED,
        "cannot_discuss",
    ),
    (
        "as_an_ai_no_opinions",
        "I'm sorry, but as an AI I don't have opinions; the government "
        "cannot be judged by me.",
        REFUSED,
        "as_an_ai_cannot",
    ),
    (
        "statement_then_refusal",
        "The government cannot restrict speech. I'm sorry, but I can't help with that.",
        REFUSED,
        "sorry_but",
    ),
    ("fullwidth_words_not_refusal", "\uff29\uff2d sorry", ANSWERED, ""),
    ("shouting_refusal", "I  CANNOT  HELP  WITH  THAT.", REFUSED, "cannot_help"),
    (
        "refusal_after_long_preamble",
        "That is a great question! " * 8 + "I'm sorry, but I can't help with that.",
        ANSWERED,
        "",
    ),
    (
        "large_language_model",
        "As a large language model, I cannot discuss that.",
        REFUSED,
        "cannot_discuss",
    ),
    (
        "ai_developed_by",
        "As an AI developed by OpenAI, I cannot share views on that.",
        REFUSED,
        "as_an_ai_cannot",
    ),
    ("wont_answer", "I won't answer that.", REFUSED, "will_not"),
    ("not_going_to_discuss", "I'm not going to discuss this.", REFUSED, "not_going_to"),
    (
        "not_something_talk_about",
        "Sorry, that's not something I can talk about.",
        REFUSED,
        "not_something_i_can",
    ),
    ("unable_to_respond", "I'm unable to provide a response.", REFUSED, "unable_to"),
    (
        "pivot_to_feel_free",
        "I can't provide that. However, if you have other questions, feel "
        "free to ask and I will help you.",
        REFUSED,
        "cannot_provide",
    ),
    (
        "pivot_to_glad_to_help",
        "I can't provide that, but I'd be glad to help with something else "
        "that is on your mind today perhaps.",
        REFUSED,
        "cannot_provide",
    ),
    (
        "apologize_cant_answer",
        "I apologize, I can't answer that.",
        REFUSED,
        "cannot_engage",
    ),
    (
        "sorry_cant_answer",
        "Sorry, I can't answer that question.",
        REFUSED,
        "cannot_engage",
    ),
    (
        "am_sorry_cannot_provide",
        "I am sorry, I cannot provide information on that topic.",
        REFUSED,
        "cannot_provide",
    ),
    ("cannot_fulfill", "I cannot fulfill this request.", REFUSED, "cannot_engage"),
    (
        "legal_hedge_short",
        "I can't give legal advice, but in general tenants have rights under local "
        "law including notice periods.",
        ANSWERED,
        "",
    ),
    (
        "pivot_to_just_a_model",
        "I can't discuss that, but the thing is that I am just a model and cannot "
        "do it, sorry about all that stuff.",
        REFUSED,
        "cannot_discuss",
    ),
    (
        "just_a_model",
        "I'm just an AI model and cannot give opinions on politics.",
        REFUSED,
        "just_a_model_cannot",
    ),
    ("spaces_newline_tab", "   \n\t  ", EMPTY, ""),
    # Empty answers.
    ("empty", "", EMPTY, ""),
    ("spaces", "   ", EMPTY, ""),
    ("newlines_tabs", "\n\t \r\n", EMPTY, ""),
    ("zero_width", "\u200b \ufeff", EMPTY, ""),
    ("zero_width_layers", "\u200b \u200b \u200b", EMPTY, ""),
    ("lrm_only", "\u200e", EMPTY, ""),
    ("rlo_only", "\u202e", EMPTY, ""),
    ("invisible_separator", "\u2063", EMPTY, ""),
    ("soft_hyphen_only", "\u00ad", EMPTY, ""),
    ("hangul_filler", "\u3164 \u3164", EMPTY, ""),
    ("punctuation_only", "...", EMPTY, ""),
]


@pytest.mark.parametrize(
    ("text", "classification", "rule"),
    [pytest.param(text, cls, rule, id=case_id) for case_id, text, cls, rule in CASES],
)
def test_classify_answer(text: str, classification: int, rule: str) -> None:
    assert classify_answer(text) == ClassifiedAnswer(classification, rule)


def test_table_has_enough_cases() -> None:
    assert len(CASES) >= 30
    assert len({case_id for case_id, *_ in CASES}) == len(CASES)


def test_rule_names_are_unique_and_nonempty() -> None:
    names = [rule.name for rule in (*REFUSAL_RULES, *DEFLECTION_RULES)]
    assert all(names)
    assert len(names) == len(set(names))
    assert all(isinstance(rule.pattern, re.Pattern) for rule in REFUSAL_RULES)


def test_every_refusal_rule_is_exercised() -> None:
    fired = {rule for _, _, cls, rule in CASES if cls == REFUSED}
    assert fired == {rule.name for rule in REFUSAL_RULES}


def test_refusal_far_into_answer_is_not_a_refusal() -> None:
    padding = "Paris is the capital and largest city of France. " * 6
    assert classify_answer(padding + "I cannot help with that.").classification == (
        ANSWERED
    )
    assert classify_answer("I cannot help with that. " + padding).classification == (
        REFUSED
    )
