"""Synthetic Italian customer-service chat turns annotated with the paper's eight entity types.

Two domains, "A" (a telecom operator's web chat: formal, entities written compactly) and "B" (an
energy and banking helpline transcribed from calls: informal, entities spoken in pieces — phone
numbers and IBANs in groups of digits, customer codes in a different shape). Every sentence is
built from a template with several slots and phrase variants, so the model has to use context as
well as the shape of the tokens. Generation is seeded and reproducible.
"""

from __future__ import annotations

import datetime
import functools
import random
import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from faker import Faker

from ..conll import Corpus, Sentence, write_conll
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


class _Entities:
    """Surface forms of each entity type in one domain."""

    def __init__(self, fake: Faker, rng: random.Random, domain: str):
        self.fake, self.rng, self.domain = fake, rng, domain

    def Person(self) -> str:
        choice = self.rng.random()
        if choice < 0.5:
            return f"{self.fake.first_name()} {self.fake.last_name()}"
        if choice < 0.75:
            return self.fake.last_name()
        return self.fake.first_name()

    def Phone(self) -> str:
        mobile = "3" + "".join(str(self.rng.randint(0, 9)) for _ in range(9))
        if self.domain == "A":
            return self.rng.choice([mobile, "+39" + mobile, self.fake.phone_number().replace(" ", "")])
        groups = self.rng.choice([(3, 3, 4), (3, 7), (3, 2, 2, 3)])
        spoken = _spaced_digits(mobile, groups)
        return self.rng.choice([spoken, "+39 " + spoken, "0039 " + spoken])

    def CustomerIdentification(self) -> str:
        digits = "".join(str(self.rng.randint(0, 9)) for _ in range(self.rng.randint(6, 8)))
        if self.domain == "A":
            return self.rng.choice([f"CL{digits}", f"TLC-{digits}", digits])
        year = self.rng.randint(2015, 2025)
        letters = "".join(self.rng.choice("ABCDEFGHLMNPRSTUVZ") for _ in range(3))
        return self.rng.choice([f"{letters} {year} {digits[:5]}", f"{letters}/{year}/{digits[:5]}",
                                f"{letters}{digits[:4]}"])

    def PaymentInformation(self) -> str:
        iban = self.fake.iban()
        card = self.fake.credit_card_number()
        if self.domain == "A":
            return self.rng.choice([iban, iban, card])
        return self.rng.choice([_spaced_digits(iban, (4,) * 7), _spaced_digits(card, (4, 4, 4, 4)), iban])

    def PersonalInformation(self) -> str:
        birth = self.date(1935, 2006)
        return self.rng.choice([self.fake.ssn(), birth.strftime("%d/%m/%Y"), self.fake.email(),
                                f"{birth.day} {_MONTHS[birth.month - 1]} {birth.year}"])

    def Address(self) -> str:
        street = f"{self.rng.choice(_STREET_KINDS)} {self.fake.street_name().split(' ', 1)[-1]} " \
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
        return self.rng.choice(_sorted_cities())

    def Location(self) -> str:
        return self.rng.choice([self.city(), self.city(), self.fake.administrative_unit(), self.rng.choice(_REGIONS)])

    def Organization(self) -> str:
        if self.rng.random() < 0.5:
            return self.fake.company()
        return self.rng.choice(_ORGANIZATIONS)


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


def generate_sentences(domain: str, count: int, seed: int = 0,
                       exclude_types: Iterable[str] = ()) -> List[Sentence]:
    """``count`` IOB2-labelled sentences of ``domain``; ``exclude_types`` are written but labelled O."""
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {', '.join(DOMAINS)}, not {domain!r}")
    rng = random.Random(f"{domain}-{seed}")
    fake = Faker("it_IT")
    fake.seed_instance(rng.randint(0, 2**31))
    entities = _Entities(fake, rng, domain)
    excluded = set(exclude_types)
    clauses = _SHARED_CLAUSES + _OWN_CLAUSES[domain]
    sentences = []
    for _ in range(count):
        template = _compose(rng, domain, clauses)
        tokens, labels = _fill(template, entities, rng, domain, excluded)
        sentences.append(Sentence(tokens, labels))
    return sentences


def _compose(rng: random.Random, domain: str, clauses: Sequence[str]) -> str:
    """Opener, one or two clauses joined by a connector, closer; capitalized in A."""
    parts = [rng.choice(_OPENERS[domain]), rng.choice(clauses)]
    if rng.random() < 0.35:
        parts += [rng.choice(_CONNECTORS[domain]), rng.choice(clauses)]
    closer = rng.choice(_CLOSERS[domain])
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


def _append_text(text: str, tokens: List[str], labels: List[str], kind: Optional[str] = None) -> None:
    words = [t[0] for t in tokenize(text)]
    tokens.extend(words)
    labels.extend(("B-" if i == 0 else "I-") + kind if kind else "O" for i in range(len(words)))


def generate_corpus(domain: str, count: int, seed: int = 0, exclude_types: Iterable[str] = ()) -> Corpus:
    return Corpus(generate_sentences(domain, count, seed, exclude_types), "IOB2")


def write_dataset(folder: Union[str, Path], domain: str = "A", sizes: Tuple[int, int, int] = (1500, 300, 300),
                  seed: int = 0, exclude_types: Iterable[str] = ()) -> Dict[str, Path]:
    """Write ``train.txt``, ``dev.txt`` and ``test.txt`` (CoNLL, IOB2) for one domain."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for offset, (split, size) in enumerate(zip(("train", "dev", "test"), sizes)):
        path = folder / f"{split}.txt"
        write_conll(path, generate_sentences(domain, size, seed * 1000 + offset, exclude_types))
        paths[split] = path
    return paths
