"""How a model's refusal looks, in the languages ``checks.detect_language`` knows.

A refusal is recognised by its *shape*, not by single words: it opens the answer, may start
with apologies ("I'm sorry, but", "Leider", "抱歉"), and then says the model itself cannot or
will not do the job ("I can't help with that", "no puedo ayudarte con eso", "我无法提供"). Verbs
of helping count only with an object that points back at the request ("with that", "dabei") or
with nothing at all, so content such as "I can't help you move this weekend" or "I can't help
feeling…" is not a refusal. ``INABILITY`` is looser: any first-person "I cannot" — used on the
*input*, where it means a refusal-like answer may simply be faithful to the text.
"""

from __future__ import annotations

import re
import unicodedata

OPENERS = "|".join(
    (
        # en
        r"i'?m (?:very |so |really |truly )?sorry",
        r"i am (?:very |so |really |truly )?sorry",
        r"sorry",
        r"(?:my )?apologies",
        r"i apologi[sz]e",
        r"unfortunately",
        r"regrettably",
        r"i'?m afraid",
        r"i am afraid",
        r"as an ai(?: language model| assistant| model)?",
        r"as a language model",
        r"hmm+",
        r"well",
        r"ok(?:ay)?",
        r"understood",
        # de
        r"es tut mir (?:sehr |wirklich )?leid",
        r"tut mir leid",
        r"entschuldigung",
        r"entschuldigen sie",
        r"leider",
        r"bedauerlicherweise",
        r"als (?:ein )?ki(?:-sprachmodell|-assistent|-modell)?",
        # fr
        r"je suis (?:vraiment |sincèrement )?(?:désolée?|navrée?)",
        r"désolée?",
        r"navrée?",
        r"je m'excuse",
        r"malheureusement",
        r"en tant qu'(?:ia|intelligence artificielle|assistant|modèle de langage)",
        # es
        r"lo (?:siento|lamento)(?: mucho)?",
        r"disculp[ae]",
        r"perdón",
        r"lamentablemente",
        r"desafortunadamente",
        r"por desgracia",
        r"como (?:un )?(?:modelo de lenguaje|asistente|ia)(?: de ia)?",
        # it
        r"mi dispiace(?: molto)?",
        r"spiacente",
        r"purtroppo",
        r"sfortunatamente",
        r"mi scuso",
        r"come (?:un )?(?:modello linguistico|assistente|ia)(?: di ia)?",
        # pt
        r"desculpe?",
        r"sinto muito",
        r"lamento",
        r"infelizmente",
        r"como (?:um )?(?:modelo de linguagem|assistente|ia)(?: de ia)?",
        # nl
        r"het spijt me",
        r"helaas",
        r"(?:mijn )?excuses",
        r"als (?:een )?(?:ai|taalmodel|ai-taalmodel|ai-assistent)",
        # ru
        r"извините",
        r"простите",
        r"к сожалению",
        r"мне (?:очень )?жаль",
        r"сожалею",
        r"прошу прощения",
        r"как (?:языковая модель|ии|модель ии|искусственный интеллект)",
        # el
        r"λυπάμαι",
        r"συγγνώμη",
        r"δυστυχώς",
        # ar
        r"عذر[اًا]{0,2}",
        r"آسف[ةه]?",
        r"أعتذر",
        r"(?:مع )?للأسف",
        r"مع الأسف",
        # he
        r"מצטערת?",
        r"סליחה",
        r"לצערי",
        r"אני מתנצלת?",
        # hi
        r"मुझे खेद है",
        r"क्षमा (?:करें|कीजिए)",
        r"माफ़? (?:करें|कीजिए)",
        r"दुर्भाग्य से",
        # th
        r"ขออภัย(?:ครับ|ค่ะ)?",
        r"ขอโทษ(?:ครับ|ค่ะ)?",
        r"น่าเสียดายที่",
        # ko
        r"죄송하지만",
        r"죄송합니다",
        r"미안하지만",
        r"미안합니다",
        r"유감스럽게도",
        r"안타깝게도",
        # ja
        r"申し訳(?:ありません|ございません)(?:が)?",
        r"すみません(?:が)?",
        r"ごめんなさい",
        r"残念ながら",
        r"恐れ入りますが",
        # zh
        r"(?:非常|很)?抱歉",
        r"对不起",
        r"不好意思",
        r"遗憾的是",
        r"很遗憾",
        r"作为(?:一个)?(?:ai|人工智能)(?:语言模型|助手)?",
    )
)

# Words that point back at the request: "help with THAT", "dabei", "con eso".
_EN_META = (
    r"(?:(?:you|you guys)\s+)?(?:(?:with|on|in)\s+)?"
    r"(?:(?:that|this|it|here|such)(?:\s+(?:request|task|one|text|content|document|question|kind of \w+))?"
    r"|(?:your|the)\s+(?:request|task|question|query)"
    r"|(?:summariz|translat|classif|extract|rewrit|review|brainstorm)\w*\b[^.!?]*)?\s*(?:[.!,;]|$)"
)
_EN_OBJECT = (
    r"(?:a|an|the|that|this|such|any|you with(?: a| an| the)?)?\s*"
    r"(?:summary|translation|rewrite|classification|review|response|answer|information|assistance|help"
    r"|content|output|list|ideas|that|this|it)\b"
)
_EN_ABILITY = (
    r"i\s+(?:can't|cannot|can not|won't|will not|must not|shouldn't|should not)"
    r"|i(?:'m|\s+am)\s+(?:not able|unable|not in a position|not allowed|not permitted|not going)\s+to"
    r"|i\s+(?:won't|will not)\s+be able to|i\s+(?:do not|don't)\s+have the ability to"
)
_EN = (
    rf"(?:{_EN_ABILITY})\s+(?:"
    rf"(?:help|assist)\b\s*{_EN_META}"
    rf"|(?:comply|fulfil|fulfill|honou?r|accommodate|engage|continue|proceed|do that|do this|do it)\b"
    rf"|(?:provide|give|offer|generate|create|produce|write|share)\s+{_EN_OBJECT}"
    r"|(?:summari[sz]e|translate|classify|categori[sz]e|extract|rewrite|rephrase|review|brainstorm"
    r"|answer|respond to|analy[sz]e|process|complete)\b"
    r"|(?:read|access|open|view|see|understand)\s+(?:the|this|that|your)\s+"
    r"(?:file|text|document|attachment|link|url|image|content|page|input)\b"
    r")"
    r"|i\s+(?:can't|cannot|can not)\s*(?:[.!]|$)"
    r"|i\s+(?:must|have to|need to)\s+(?:respectfully\s+)?(?:decline|refuse)"
    r"|i\s+(?:do not|don't)\s+(?:feel comfortable|have access to (?:the|this|that|your))"
    r"|i(?:'m|\s+am)\s+not\s+comfortable"
    r"|(?:that|this)(?:'s|\s+is)\s+not\s+something\s+i\s+can"
    r"|(?:this|that|your)\s+request\s+(?:cannot|can't|can not)\s+be"
)

CORES = "|".join(
    (
        _EN,
        # de
        r"(?:dabei|damit|hierbei|hiermit|bei dieser anfrage) kann ich (?:ihnen |dir |euch )?(?:leider )?nicht"
        r" (?:weiter)?helfen",
        r"(?:ich kann|kann ich) (?:ihnen |dir |euch )?(?:dabei |damit |hierbei |hiermit )?(?:leider )?"
        r"nicht (?:weiter)?helfen\s*(?:[.!,]|$)",
        r"(?:ich kann|kann ich)\s+(?:[^\s.!?]+\s+){0,4}?nicht\s+(?:erfüllen|nachkommen|bearbeiten|"
        r"zusammenfassen|übersetzen|beantworten|ausführen|bereitstellen|umschreiben|klassifizieren|"
        r"extrahieren|liefern|tun)\b",
        r"ich bin (?:leider )?nicht in der lage",
        r"ich muss (?:diese anfrage |das )?ablehnen",
        # fr
        r"je ne (?:peux|pourrai|pourrais|suis pas en mesure d[e']|suis pas capable d[e'])\s*(?:pas\s+)?"
        r"(?:vous\s+|t'|te\s+)?(?:aider|assister|répondre|satisfaire|fournir|traduire|résumer|donner suite"
        r"|faire (?:ça|cela|ceci)|traiter|accomplir|réaliser|rédiger|réécrire|classer|extraire|accéder)",
        r"je dois (?:malheureusement )?(?:refuser|décliner)",
        # es
        r"(?:yo )?no (?:puedo|podré|podría|me es posible|estoy en condiciones de|soy capaz de)\s+(?:"
        r"(?:ayudar|asistir)(?:te|le|les)?\s*(?:con\s+)?(?:eso|esto|ello|esa \w+|esta \w+|tu \w+|su \w+)?"
        r"\s*(?:[.!,;]|$)"
        r"|cumplir|proporcionar|realizar|atender|responder|traducir|resumir|hacer (?:eso|esto)|procesar"
        r"|satisfacer|completar|reescribir|clasificar|extraer|generar|crear|acceder)",
        r"(?:yo )?no (?:puedo|podré)\s*[.!]",
        # it
        r"non (?:posso|potrò|sono in grado di|riesco a|mi è possibile)\s+(?:"
        r"aiutar(?:ti|la|vi)?\s*(?:con\s+)?(?:(?:questo|questa|ciò|quello)(?:\s+\w+)?|la tua \w+|la sua \w+)?"
        r"\s*(?:[.!,;]|$)"
        r"|assisterti|soddisfare|fornire|rispondere|tradurre|riassumere|fare (?:questo|ciò|questa)"
        r"|elaborare|esaudire|completare|accontentar\w*|riscrivere|classificare|estrarre|generare|creare"
        r"|accedere)",
        # pt
        r"(?:eu )?não (?:posso|poderei|consigo|sou capaz de|estou em condições de|tenho como)\s+(?:"
        r"ajudar\s*(?:você\s+|-te\s+)?(?:com\s+)?(?:isso|isto|essa \w+|esta \w+|sua \w+|seu \w+)?"
        r"\s*(?:[.!,;]|$)"
        r"|atender|fornecer|responder|traduzir|resumir|fazer isso|processar|cumprir|auxiliar|realizar"
        r"|completar|reescrever|classificar|extrair|gerar|criar|acessar)",
        # nl
        r"(?:daar|hiermee|daarmee|hierbij|daarbij) kan ik (?:je |u )?(?:helaas )?niet (?:mee )?helpen",
        r"(?:ik kan|kan ik) (?:je |u )?(?:daar |hier )?(?:helaas )?niet (?:mee )?helpen\s*(?:[.!,]|$)",
        r"(?:ik kan|kan ik)\s+(?:[^\s.!?]+\s+){0,4}?niet\s+(?:voldoen|vertalen|samenvatten|beantwoorden|"
        r"uitvoeren|leveren|verwerken|herschrijven|classificeren|ingaan)",
        r"ik ben (?:helaas )?niet in staat",
        # ru
        r"(?:я\s+)?не (?:могу|смогу|в состоянии|имею возможности)\s+(?:вам\s+|тебе\s+)?(?:"
        r"помочь\s*(?:(?:вам|тебе)\s+)?(?:(?:с этим|в этом|с этой|с вашей|с вашим|с таким)(?:\s+\w+)?)?"
        r"\s*(?:[.!,;]|$)"
        r"|выполнить|предоставить|ответить|перевести|обобщить|сделать это|обработать|удовлетворить"
        r"|содействовать|кратко изложить|пересказать|переписать|классифицировать|извлечь)",
        # el
        r"(?:δεν|δε) (?:μπορώ|είμαι σε θέση) να (?:σας |σε )?(?:βοηθήσω|ικανοποιήσω|εκπληρώσω|"
        r"παράσχω|παρέχω|απαντήσω|μεταφράσω|συνοψίσω|επεξεργαστώ|κάνω αυτό|συμμορφωθώ)",
        # ar
        r"(?:لا أستطيع|لا استطيع|لا يمكنني|لا يسعني|لست قادر[اًا]{0,2}|لن أتمكن من|لا أقدر)\s*(?:على\s+)?"
        r"(?:المساعدة|مساعدتك|مساعدتكم|تلبية|تقديم|الإجابة|ترجمة|تلخيص|القيام بذلك|تنفيذ|الامتثال"
        r"|إعادة صياغة|تصنيف|استخراج)",
        # he
        r"(?:אני לא|איני|אינני)\s+(?:יכול|יכולה|מסוגל|מסוגלת)\s+(?:לעזור|לסייע|למלא|לספק|לענות|לתרגם"
        r"|לסכם|לבצע|לשכתב|לסווג)",
        # hi
        r"मैं[^।.!?\n]{0,40}?(?:मदद|सहायता|पूरा|प्रदान|उत्तर|अनुवाद|सारांश|पालन)[^।.!?\n]{0,15}?"
        r"नहीं (?:कर|दे) (?:सकता|सकती|पाऊँगा|पाऊंगा|पाऊँगी)",
        r"मैं[^।.!?\n]{0,40}?(?:करने|देने) में असमर्थ",
        # th
        r"(?:ฉัน|ผม|ดิฉัน|เรา)?\s*ไม่สามารถ(?:ช่วย|ดำเนินการ|ให้ข้อมูล|ให้ความช่วยเหลือ|ตอบ|แปล|สรุป|ทำตาม"
        r"|ทำสิ่งนั้น|ทำเช่นนั้น)",
        # ko
        r"(?:(?:그|이|해당|그런|요청하신|이러한|그러한)\s*)?"
        r"(?:[가-힣]{1,6}(?:은|는|을|를|에는|에|에 대해서는)\s*)?"
        r"(?:도와드릴|도와 드릴|도울|처리할|응할|수행할|제공할"
        r"|답변할|지원할|들어드릴|번역할|요약할) 수 없",
        # ja
        r"[^。!?\n]{0,20}?(?:お応えでき|お手伝いでき|対応でき|お答えでき|ご協力でき|お役に立て|応じられ"
        r"|応じることはでき|提供でき|翻訳でき|要約でき)(?:ません|かねます)",
        r"[^。!?\n]{0,20}?(?:いたしかねます|できかねます)",
        # zh
        r"(?:(?:这个|该|此)?(?:请求|问题|任务)[,]?)?我(?:无法|不能|没法|没办法|不可以|不便)"
        r"(?:为你|为您|帮你|帮您|替你|替您)?(?:帮助|帮忙|协助|提供|完成|处理|满足|回答|翻译|总结|执行|配合"
        r"|回应|生成|改写)",
    )
)

_SEP = (
    r"[\s,.!;:。、،…—–-]*(?:(?:but|however|though|pero|mais|aber|ma|mas|maar|но|αλλά|لكن|ولكن|אבל|लेकिन"
    r"|แต่|하지만|が|但是|但)\b)?[\s,.!;:。、،…—–-]*"
)
# An optional clause between the apology and the refusal ("…, but the text is garbled, so I can't…");
# no quotes or colons, so reported speech ("The agent wrote: 'I can't help'") never matches.
_FILLER = r"(?:[^.!?。!?\n:\"«»]{0,120}?(?:,|\bso\b|\band\b|\btherefore\b)\s*)?"


def _compile(pattern: str) -> re.Pattern[str]:
    """Patterns are matched against NFKC-normalised text (see ``checks._plain``), so normalise them too."""
    return re.compile(unicodedata.normalize("NFKC", pattern), re.IGNORECASE)


REFUSAL = _compile(rf"^(?:(?:{OPENERS}){_SEP})*{_FILLER}(?:{CORES})")
AS_AN_AI = _compile(
    r"^(?:as an ai|as a language model|als ki|en tant qu'ia|como (?:un )?modelo de lenguaje|"
    r"come (?:un )?modello linguistico|como (?:um )?modelo de linguagem|als (?:een )?ai-taalmodel|"
    r"как языковая модель|作为(?:一个)?(?:ai|人工智能))"
)

INABILITY = _compile(
    r"\bi(?:'m|\s+am)?\s+(?:can't|cannot|can not|unable|not able|won't|will not)\b|\bsorry\b"
    r"|\bich kann\b[^.!?]{0,40}\bnicht\b|\bje ne (?:peux|pourrai)\b|\bno puedo\b|\bnon posso\b"
    r"|\bnão (?:posso|consigo)\b|\bik kan\b[^.!?]{0,40}\bniet\b|не могу|δεν μπορώ|لا أستطيع|لا يمكنني"
    r"|לא יכול|नहीं कर सकता|ไม่สามารถ|수 없|できません|我(?:无法|不能)"
)
