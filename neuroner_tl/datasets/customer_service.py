"""Synthetic Italian customer-service chat turns annotated with the paper's eight entity types.

Two domains, "A" (a telecom operator's web chat: formal, entities written compactly) and "B" (an
energy and banking helpline transcribed from calls: informal, entities spoken in pieces — phone
numbers and IBANs in groups of digits, customer codes in a different shape). Every sentence is
built from a template with several slots and phrase variants, so the model has to use context as
well as the shape of the tokens. Generation is seeded and reproducible.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

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
        birth = self.fake.date_of_birth(minimum_age=18, maximum_age=90)
        return self.rng.choice([self.fake.ssn(), birth.strftime("%d/%m/%Y"), self.fake.email(),
                                f"{birth.day} {_MONTHS[birth.month - 1]} {birth.year}"])

    def Address(self) -> str:
        street = f"{self.rng.choice(_STREET_KINDS)} {self.fake.street_name().split(' ', 1)[-1]} " \
                 f"{self.fake.building_number()}"
        if self.rng.random() < 0.3:
            street += f" , {self.fake.postcode()}"
        return street

    def Location(self) -> str:
        return self.rng.choice([self.fake.city(), self.fake.city(), self.fake.administrative_unit(),
                                self.rng.choice(_REGIONS)])

    def Organization(self) -> str:
        if self.rng.random() < 0.5:
            return self.fake.company()
        return self.rng.choice(_ORGANIZATIONS)


_MONTHS = ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre",
           "ottobre", "novembre", "dicembre"]
_STREET_KINDS = ["Via", "Viale", "Piazza", "Corso", "Vicolo", "Largo", "via", "piazza", "corso"]
_REGIONS = ["Lombardia", "Toscana", "Sicilia", "Piemonte", "Veneto", "Puglia", "Lazio", "Campania",
            "Emilia-Romagna", "Sardegna", "Liguria", "Calabria"]
_ORGANIZATIONS = ["Poste Italiane", "Intesa Sanpaolo", "UniCredit", "Agenzia delle Entrate", "INPS",
                  "Banca Sella", "Enel", "Comune di Milano", "Fineco", "Mediolanum", "Ikea", "Amazon"]

_GREETING = {"A": ["Buongiorno", "Buonasera", "Salve", "Gentile cliente"],
             "B": ["Pronto", "Sì pronto", "Buongiorno", "Ehm salve", "Allora"]}

# Each template is a list of alternatives per part; {Type} marks an entity slot.
_TEMPLATES: Dict[str, List[str]] = {
    "A": [
        "{greet} , sono {Person} e vi scrivo per la linea {Phone} .",
        "Il mio codice cliente è {CustomerIdentification} , potete verificare ?",
        "Vorrei domiciliare le bollette sul conto {PaymentInformation} intestato a {Person} .",
        "La fattura va spedita in {Address} a {Location} .",
        "Ho cambiato residenza : il nuovo indirizzo è {Address} , {Location} .",
        "Per l' accredito usate l' IBAN {PaymentInformation} presso {Organization} .",
        "Il numero da portare è {Phone} , attualmente con {Organization} .",
        "Confermo il codice fiscale {PersonalInformation} e il numero {Phone} .",
        "Sono nato il {PersonalInformation} a {Location} .",
        "Potete richiamarmi al {Phone} dopo le 18 ?",
        "La pratica è a nome di {Person} , codice {CustomerIdentification} .",
        "Lavoro per {Organization} e vorrei una offerta business per la sede di {Location} .",
        "Il tecnico deve venire in {Address} , citofono {Person} .",
        "La mia email è {PersonalInformation} , scrivetemi lì per favore .",
        "Ho pagato con la carta {PaymentInformation} ma l' addebito non risulta .",
        "Risulta un contratto con codice {CustomerIdentification} attivo a {Location} ?",
        "{greet} , mi chiamo {Person} , cliente {CustomerIdentification} , ho un problema con la fibra .",
        "Il modem è stato consegnato in {Address} ma io abito a {Location} .",
        "Mi avete addebitato due volte sul conto {PaymentInformation} .",
        "Il referente aziendale è {Person} di {Organization} .",
        "Attivate la SIM sul numero {Phone} intestato a {Person} , codice fiscale {PersonalInformation} .",
        "Non ricevo più le fatture da quando mi sono trasferito a {Location} .",
        "Vorrei disdire il contratto , il codice è {CustomerIdentification} .",
        "Grazie {Person} , la richiesta è stata registrata .",
        "La linea fissa {Phone} non funziona da ieri .",
        "Il negozio di {Organization} in {Address} non ha saputo aiutarmi .",
        "Vi ho già mandato il documento con data di nascita {PersonalInformation} .",
        "Vi contatto dall' ufficio di {Organization} a {Location} .",
        "Ok , quindi devo solo aspettare la mail di conferma ?",
        "Il servizio clienti mi ha detto di riprovare domani , ma non è cambiato nulla .",
    ],
    "B": [
        "{greet} sì sono {Person} chiamo per la bolletta della luce .",
        "allora il numero cliente dovrebbe essere {CustomerIdentification} .",
        "mi può richiamare al {Phone} che adesso sono in macchina ?",
        "il mio cellulare è {Phone} , no aspetti , è giusto .",
        "l' iban è {PaymentInformation} , lo legge lei ?",
        "abito in {Address} , a {Location} , vicino alla stazione .",
        "ecco la carta è la {PaymentInformation} , scade l' anno prossimo .",
        "sì il codice fiscale è {PersonalInformation} .",
        "sono nata il {PersonalInformation} , mi scusi .",
        "la banca è {Organization} , filiale di {Location} .",
        "il contatore sta in {Address} ma la bolletta arriva a mia madre {Person} .",
        "guardi che ho già parlato con il suo collega {Person} ieri .",
        "la pratica {CustomerIdentification} non si è ancora chiusa .",
        "avevo il contratto con {Organization} e sono passato a voi a {Location} .",
        "mi segna anche il fisso {Phone} per favore ?",
        "eh no il titolare è mio marito , {Person} .",
        "mi hanno scritto dalla {Organization} dicendo che c' è un insoluto .",
        "{greet} , il codice pratica è {CustomerIdentification} , me lo hanno dato al negozio .",
        "vorrei pagare con addebito sul conto {PaymentInformation} da adesso in poi .",
        "la seconda casa è in {Address} , a {Location} , stesso contratto .",
        "il numero da chiamare per il tecnico è {Phone} , chieda di {Person} .",
        "la mail è {PersonalInformation} , tutto minuscolo .",
        "sì confermo , {Person} , nato a {Location} .",
        "allora aspetto la chiamata , grazie mille .",
        "no guardi , non ho ricevuto niente né per posta né per mail .",
        "sono {Person} dell' amministrazione di {Organization} , chiamo per le utenze .",
        "il rimborso lo volete sul {PaymentInformation} o serve un altro modulo ?",
        "la lettura del contatore l' ho mandata dal sito , codice {CustomerIdentification} .",
        "mi passa un operatore di {Location} per favore ?",
        "perfetto , allora ci sentiamo la settimana prossima .",
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
    sentences = []
    templates = [t.replace("' ", "'") for t in _TEMPLATES[domain]]  # l' amico -> l'amico
    for _ in range(count):
        template = rng.choice(templates)
        tokens, labels = _fill(template, entities, rng, domain, excluded)
        sentences.append(Sentence(tokens, labels))
    return sentences


def _fill(template: str, entities: _Entities, rng: random.Random, domain: str,
          excluded: set) -> Tuple[List[str], List[str]]:
    tokens: List[str] = []
    labels: List[str] = []
    position = 0
    for match in _SLOT.finditer(template):
        _append_text(template[position: match.start()], tokens, labels)
        slot = match.group(1)
        if slot == "greet":
            _append_text(rng.choice(_GREETING[domain]), tokens, labels)
        else:
            text = getattr(entities, slot)()
            kind = None if slot in excluded else slot
            _append_text(text, tokens, labels, kind)
        position = match.end()
    _append_text(template[position:], tokens, labels)
    if rng.random() < 0.3 and domain == "B":  # spoken transcripts lose their capitals
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
