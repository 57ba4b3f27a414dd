"""Synthetic Italian customer-service chat turns annotated with the paper's eight entity types.

Two domains, "A" (a telecom operator's web chat: formal, entities written compactly) and "B" (an
energy and banking helpline transcribed from calls: informal, entities spoken in pieces — phone
numbers and IBANs in groups of digits, customer codes in a different shape). Every sentence is
built from a template with several slots and phrase variants, so the model has to use context as
well as the shape of the tokens. Generation is seeded and reproducible.

The test split is harder than what training sees, so that memorising templates is not enough:
a share of every list (clause templates, openers, closers, connectors, cities, organizations,
street kinds and each type's surface formats) is *held out* and appears only in the test split,
where half of the choices come from it. Every split carries the noise of real chats: sentences in
lower or upper case, typos, missing punctuation, tokens glued together or split apart, and
organizations named after cities (Banca Popolare di Sondrio) next to the cities themselves.
"""

from __future__ import annotations

import datetime
import functools
import random
import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from faker import Faker

from ..atomic import atomic_write_text
from ..conll import format_conll
from ..corpus import Corpus, Sentence
from ..tokenizer import tokenize

ENTITY_TYPES = ("Address", "CustomerIdentification", "Location", "Organization", "PaymentInformation",
                "Person", "PersonalInformation", "Phone")
DOMAINS = ("A", "B")
_SLOT = re.compile(r"\{(\w+)\}")


def _spaced_digits(digits: str, groups: Sequence[int]) -> str:
    parts, position = [], 0
    for size in groups:
        parts.append(digits[position: position + size])
        position += size
    if position < len(digits):
        parts.append(digits[position:])
    return " ".join(p for p in parts if p)


def held_out(items: Sequence, every: int) -> Tuple[list, list]:
    """(seen in training, test only): every ``every``-th item is held out for the test split."""
    return ([x for i, x in enumerate(items) if i % every != every - 1],
            [x for i, x in enumerate(items) if i % every == every - 1])


class _Choices:
    """Seeded choices that draw held-out items only in the test split (half of the time there)."""

    def __init__(self, rng: random.Random, test: bool):
        self.rng, self.test = rng, test

    def pick(self, items: Sequence, every: int = 4):
        seen, held = held_out(items, every)
        if self.test and held and self.rng.random() < 0.5:
            return self.rng.choice(held)
        return self.rng.choice(seen)


class _Entities:
    """Surface forms of each entity type in one domain; each type's last format is test-only."""

    def __init__(self, fake: Faker, rng: random.Random, domain: str, choices: "_Choices"):
        self.fake, self.rng, self.domain, self.choices = fake, rng, domain, choices

    def formats(self, *makers):
        """One of the formats, made only once chosen (each draws from the generator)."""
        return self.choices.pick(makers, every=len(makers))()

    def Person(self) -> str:
        first, last = self.fake.first_name, self.fake.last_name
        return self.formats(lambda: f"{first()} {last()}", lambda: f"{first()} {last()}", last, first,
                            lambda: f"{last()} {first()}", lambda: f"{first()} {last()} {last()}")

    def Phone(self) -> str:
        mobile = "3" + "".join(str(self.rng.randint(0, 9)) for _ in range(9))
        if self.domain == "A":
            return self.formats(lambda: mobile, lambda: "+39" + mobile,
                                lambda: self.fake.phone_number().replace(" ", ""), lambda: f"{mobile[:3]}-{mobile[3:]}")
        prefix = self.rng.choice(["", "", "+39 ", "0039 "])
        return prefix + self.formats(*(lambda g=groups: _spaced_digits(mobile, g)
                                       for groups in [(3, 3, 4), (3, 7), (3, 2, 2, 3), (2, 2, 2, 2, 2)]))

    def CustomerIdentification(self) -> str:
        digits = "".join(str(self.rng.randint(0, 9)) for _ in range(self.rng.randint(6, 8)))
        if self.domain == "A":
            return self.formats(lambda: f"CL{digits}", lambda: f"TLC-{digits}", lambda: digits, lambda: f"TLC{digits}")
        year = self.rng.randint(2015, 2025)
        letters = "".join(self.rng.choice("ABCDEFGHLMNPRSTUVZ") for _ in range(3))
        return self.formats(lambda: f"{letters} {year} {digits[:5]}", lambda: f"{letters}/{year}/{digits[:5]}",
                            lambda: f"{letters}{digits[:4]}", lambda: f"{letters}-{digits[:5]}")

    def PaymentInformation(self) -> str:
        iban = self.fake.iban()
        card = self.fake.credit_card_number()
        if self.domain == "A":
            return self.formats(lambda: iban, lambda: iban, lambda: card, lambda: _spaced_digits(iban, (4,) * 7))
        return self.formats(lambda: _spaced_digits(iban, (4,) * 7), lambda: _spaced_digits(card, (4, 4, 4, 4)),
                            lambda: iban, lambda: card)

    def PersonalInformation(self) -> str:
        birth = self.date(1935, 2006)
        return self.formats(self.fake.ssn, lambda: birth.strftime("%d/%m/%Y"), self.fake.email,
                            lambda: f"{birth.day} {_MONTHS[birth.month - 1]} {birth.year}",
                            lambda: f"{birth.day}/{birth.month}/{birth.year % 100:02d}")

    def Address(self) -> str:
        street = f"{self.choices.pick(_STREET_KINDS, every=3)} {self.fake.street_name().split(' ', 1)[-1]} " \
                 f"{self.fake.building_number()}"
        if self.rng.random() < 0.3:
            street += f" , {self.fake.postcode()}"
        return street

    def date(self, first_year: int, last_year: int) -> datetime.date:
        """A seeded date (Faker's date helpers count from today, so they change from day to day)."""
        return datetime.date(self.rng.randint(first_year, last_year), self.rng.randint(1, 12), self.rng.randint(1, 28))

    def city(self) -> str:
        # Faker's it_IT city list is built from a set, so its order (and fake.city()) follows
        # Python's hash seed; a sorted copy keeps generation reproducible across processes.
        return self.choices.pick(_sorted_cities(), every=5)

    def Location(self) -> str:
        return self.formats(self.city, self.city, self.fake.administrative_unit,
                            lambda: self.choices.pick(_REGIONS, every=4))

    def Organization(self) -> str:
        return self.formats(self.fake.company, lambda: self.choices.pick(_ORGANIZATIONS, every=3),
                            lambda: self.choices.pick(_CITY_ORGANIZATIONS).format(city=self.city()))


@functools.lru_cache(maxsize=1)
def _sorted_cities() -> List[str]:
    from faker.providers.address.it_IT import Provider

    return sorted(set(Provider.cities))


_FILLERS = {
    "amount": lambda e: e.rng.choice([str(e.rng.randint(5, 400)), f"{e.rng.randint(5, 400)},{e.rng.randint(10, 99)}"]),
    "date": lambda e: e.rng.choice([e.date(2022, 2025).strftime("%d/%m/%Y"),
                                    f"{e.rng.randint(1, 28)} {_MONTHS[e.rng.randint(0, 11)]}"]),
    "time": lambda e: f"{e.rng.randint(8, 20)}:{e.rng.choice(['00', '15', '30', '45'])}",
    "order": lambda e: e.rng.choice([str(e.rng.randint(10**5, 10**7)), f"ORD{e.rng.randint(10**4, 10**6)}"]),
    "months": lambda e: str(e.rng.randint(2, 24)),
}
_MONTHS = ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre",
           "ottobre", "novembre", "dicembre"]
_STREET_KINDS = ["Via", "Viale", "Piazza", "Corso", "Vicolo", "Largo", "via", "piazza", "corso"]
_REGIONS = ["Lombardia", "Toscana", "Sicilia", "Piemonte", "Veneto", "Puglia", "Lazio", "Campania",
            "Emilia-Romagna", "Sardegna", "Liguria", "Calabria"]
_CITY_ORGANIZATIONS = ["Banca Popolare di {city}", "Comune di {city}", "Ospedale di {city}", "{city} Calcio",
                       "Università di {city}", "Cassa di Risparmio di {city}", "Pro Loco {city}", "Gas {city}"]
_ORGANIZATIONS = ["Poste Italiane", "Intesa Sanpaolo", "UniCredit", "Agenzia delle Entrate", "INPS",
                  "Banca Sella", "Enel", "Comune di Milano", "Fineco", "Mediolanum", "Ikea", "Amazon"]

_OPENERS = {
    "A": ["Buongiorno ,", "Buonasera ,", "Salve ,", "Gentile operatore ,", "Gentili signori ,", "Ciao ,", "Allora ,", ""],
    "B": ["Pronto ,", "sì pronto ,", "ehm salve ,", "allora ,", "guardi ,", "senta ,", "buongiorno ,", "salve ,", ""],
}
_CLOSERS = {
    "A": ["Grazie .", "Grazie mille .", "Resto in attesa di un riscontro .", "Cordiali saluti .", "Saluti .", "."],
    "B": ["grazie .", "va bene ?", "ok grazie mille .", "mi scusi eh .", "capito ?", "."],
}
_CONNECTORS = {"A": [", inoltre", "; inoltre", ". Inoltre", ", e", ". Poi"],
               "B": [", e poi", ", ah e", ", eh", ", poi", "e niente"]}

# Clauses both domains use, each with entity slots {Type}.
_SHARED_CLAUSES = [
    "sono {Person} e vi contatto per la linea {Phone}",
    "il mio codice cliente è {CustomerIdentification}",
    "vorrei domiciliare le bollette sul conto {PaymentInformation}",
    "la fattura va spedita in {Address} a {Location}",
    "il nuovo indirizzo è {Address} , {Location}",
    "per l'accredito usate l'IBAN {PaymentInformation} presso {Organization}",
    "il numero da portare è {Phone} , ora sono con {Organization}",
    "il codice fiscale è {PersonalInformation}",
    "sono nato il {PersonalInformation} a {Location}",
    "potete richiamarmi al {Phone} dopo le 18",
    "la pratica è a nome di {Person} , codice {CustomerIdentification}",
    "lavoro per {Organization} nella sede di {Location}",
    "il tecnico deve venire in {Address} , citofono {Person}",
    "la mia email è {PersonalInformation}",
    "ho pagato con la carta {PaymentInformation} ma l'addebito non risulta",
    "risulta un contratto con codice {CustomerIdentification} a {Location} ?",
    "mi chiamo {Person} e ho un problema con la fibra",
    "il modem è arrivato in {Address} ma io abito a {Location}",
    "mi avete addebitato due volte sul conto {PaymentInformation}",
    "il referente è {Person} di {Organization}",
    "la SIM va attivata sul numero {Phone} intestato a {Person}",
    "non ricevo più le fatture da quando mi sono trasferito a {Location}",
    "vorrei disdire il contratto {CustomerIdentification}",
    "la linea fissa {Phone} non funziona da ieri",
    "il negozio di {Organization} in {Address} non mi ha aiutato",
    "vi ho mandato il documento con la data di nascita {PersonalInformation}",
    "ho parlato ieri con il vostro collega {Person}",
    "il contatore si trova in {Address}",
    "il titolare del contratto è {Person} , nato a {Location}",
    "la banca è {Organization} , filiale di {Location}",
    "vorrei cambiare il metodo di pagamento",
    "non ho ricevuto nessuna comunicazione",
    "il servizio non funziona da tre giorni",
    "devo solo aspettare la mail di conferma ?",
    "la bolletta di questo mese è molto più alta del solito",
    "la bolletta del {date} è di {amount} euro",
    "ho pagato {amount} euro il {date} ma risulta ancora da saldare",
    "il tecnico passa il {date} alle {time}",
    "il mio ordine {order} è fermo dal {date}",
    "l'offerta costa {amount} euro al mese per {months} mesi",
    "ho chiamato {months} volte e nessuno mi ha risposto",
    "la promozione scade il {date} , giusto ?",
    "avete un negozio a {Location} aperto dopo le {time} ?",
    "il signor {Person} ha chiamato alle {time} per la pratica {CustomerIdentification}",
    "chiedo il rimborso di {amount} euro sul conto {PaymentInformation}",
]
_OWN_CLAUSES = {
    "A": [
        "vi scrivo dalla chat del sito per conto di {Person}",
        "allego la ricevuta del bonifico dal conto {PaymentInformation}",
        "il numero {Phone} risulta ancora sospeso",
        "la richiesta è stata inoltrata all'ufficio di {Location}",
        "la fattura elettronica va intestata a {Organization}",
    ],
    "B": [
        "la pratica {CustomerIdentification} non si è ancora chiusa",
        "mi segna anche il fisso {Phone} ?",
        "il rimborso lo volete sul {PaymentInformation} ?",
        "eh no il titolare è mio marito , {Person}",
        "mi passa un operatore di {Location} ?",
    ],
}


SPLITS = ("train", "dev", "test")


def generate_sentences(domain: str, count: int, seed: int = 0, exclude_types: Iterable[str] = (),
                       split: str = "train") -> List[Sentence]:
    """``count`` IOB2-labelled sentences of ``domain``; ``exclude_types`` are written but labelled O.

    ``split="test"`` also draws the held-out templates, phrasings and entity formats.
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {', '.join(DOMAINS)}, not {domain!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    rng = random.Random(f"{domain}-{seed}" + ("-test" if split == "test" else ""))
    fake = Faker("it_IT")
    fake.seed_instance(rng.randint(0, 2**31))
    choices = _Choices(rng, split == "test")
    entities = _Entities(fake, rng, domain, choices)
    excluded = set(exclude_types)
    clauses = _SHARED_CLAUSES + _OWN_CLAUSES[domain]
    sentences = []
    for _ in range(count):
        template = _compose(choices, domain, clauses)
        tokens, labels = _fill(template, entities, rng, domain, excluded)
        tokens, labels = add_chat_noise(tokens, labels, rng)
        sentences.append(Sentence(tokens, labels))
    return sentences


def _compose(choices: "_Choices", domain: str, clauses: Sequence[str]) -> str:
    """Opener, one or two clauses joined by a connector, closer; capitalized in A."""
    rng = choices.rng
    parts = [choices.pick(_OPENERS[domain]), choices.pick(clauses)]
    if rng.random() < 0.35:
        parts += [choices.pick(_CONNECTORS[domain], every=5), choices.pick(clauses)]
    closer = choices.pick(_CLOSERS[domain], every=3)
    text = " ".join(p for p in parts if p)
    if text.endswith("?"):
        text += "" if closer == "." else " " + closer
    else:
        text += " ." if closer == "." else (" . " if domain == "A" else " , ") + closer
    if domain == "A":
        text = text[0].upper() + text[1:]
    return text


def _fill(template: str, entities: _Entities, rng: random.Random, domain: str,
          excluded: set) -> Tuple[List[str], List[str]]:
    tokens: List[str] = []
    labels: List[str] = []
    position = 0
    for match in _SLOT.finditer(template):
        _append_text(template[position: match.start()], tokens, labels)
        slot = match.group(1)
        if slot in _FILLERS:  # a number or date that is not an entity: only context tells them apart
            _append_text(_FILLERS[slot](entities), tokens, labels)
        else:
            _append_text(getattr(entities, slot)(), tokens, labels, None if slot in excluded else slot)
        position = match.end()
    _append_text(template[position:], tokens, labels)
    if rng.random() < (0.3 if domain == "B" else 0.1):  # transcripts and hasty chats lose their capitals
        tokens = [t.lower() if lab == "O" else t for t, lab in zip(tokens, labels)]
    return tokens, labels


# chat noise ----------------------------------------------------------------------------------------
def add_chat_noise(tokens: List[str], labels: List[str], rng: random.Random) -> Tuple[List[str], List[str]]:
    """Casing, typos, missing punctuation, glued and split tokens; labels follow the tokens."""
    roll = rng.random()
    if roll < 0.12:
        tokens = [t.lower() for t in tokens]
    elif roll < 0.15:
        tokens = [t.upper() for t in tokens]
    tokens = [_typo(t, rng) if len(t) >= 4 and t.isalpha() and rng.random() < (0.04 if lab == "O" else 0.02)
              else t for t, lab in zip(tokens, labels)]
    if rng.random() < 0.25:  # punctuation dropped, as hasty chats do
        kept = [i for i, t in enumerate(tokens) if t not in (",", ".", "?") or labels[i] != "O"]
        tokens, labels = [tokens[i] for i in kept], [labels[i] for i in kept]
    return _split_and_glue(tokens, labels, rng)


def _typo(token: str, rng: random.Random) -> str:
    position = rng.randint(1, len(token) - 2)
    kind = rng.randrange(3)
    if kind == 0:  # two letters swapped
        return token[:position] + token[position + 1] + token[position] + token[position + 2:]
    if kind == 1:  # a letter lost
        return token[:position] + token[position + 1:]
    return token[:position] + token[position] + token[position:]  # a letter doubled


def _split_and_glue(tokens: List[str], labels: List[str], rng: random.Random) -> Tuple[List[str], List[str]]:
    """Two O words written as one (``nonho``); a long run of digits in an entity broken in two."""
    out_tokens: List[str] = []
    out_labels: List[str] = []
    for token, label in zip(tokens, labels):
        if label == "O" and out_labels and out_labels[-1] == "O" and token.isalpha() \
                and out_tokens[-1].isalpha() and rng.random() < 0.01:
            out_tokens[-1] += token
            continue
        if label != "O" and token.isdigit() and len(token) >= 6 and rng.random() < 0.15:
            cut = rng.randint(2, len(token) - 2)
            out_tokens += [token[:cut], token[cut:]]
            out_labels += [label, "I-" + label[2:]]
            continue
        out_tokens.append(token)
        out_labels.append(label)
    return out_tokens, out_labels


def _append_text(text: str, tokens: List[str], labels: List[str], kind: Optional[str] = None) -> None:
    words = [t[0] for t in tokenize(text)]
    tokens.extend(words)
    labels.extend(("B-" if i == 0 else "I-") + kind if kind else "O" for i in range(len(words)))


def generate_corpus(domain: str, count: int, seed: int = 0, exclude_types: Iterable[str] = (),
                    split: str = "train") -> Corpus:
    return Corpus(generate_sentences(domain, count, seed, exclude_types, split), "IOB2")


def dataset_texts(domain: str = "A", sizes: Tuple[int, int, int] = (1500, 300, 300), seed: int = 0,
                  exclude_types: Iterable[str] = ()) -> Dict[str, str]:
    """The CoNLL text (IOB2) of the train, dev and test splits of one domain; the test split has
    held-out templates and formats (see the module's docstring)."""
    return {split: format_conll(generate_sentences(domain, size, seed * 1000 + offset, exclude_types, split))
            for offset, (split, size) in enumerate(zip(("train", "dev", "test"), sizes))}


def write_dataset(folder: Union[str, Path], domain: str = "A", sizes: Tuple[int, int, int] = (1500, 300, 300),
                  seed: int = 0, exclude_types: Iterable[str] = ()) -> Dict[str, Path]:
    """Write ``train.txt``, ``dev.txt`` and ``test.txt`` (``dataset_texts``) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, text in dataset_texts(domain, sizes, seed, exclude_types).items():
        paths[split] = folder / f"{split}.txt"
        atomic_write_text(paths[split], text)
    return paths
