"""Invented name lists for the synthetic school, and how names become usernames and emails.

Names are drawn independently (given, optional middle, family), so full names are random
combinations, never real people's. The lists are deliberately varied: diacritics, apostrophes,
spaces and non-Latin-origin names, because those are what break real pipelines.
"""

from __future__ import annotations

import re
import unicodedata


def _names(block: str) -> tuple[str, ...]:
    """A name list written as comma- or line-separated text (names may hold spaces)."""
    return tuple(name.strip() for name in re.split(r"[,\n]", block) if name.strip())


GIVEN_NAMES = _names(
    """
    Zoë, Chloë, Noémie, Renée, Siân, Seán, Aoife, Niamh, Oisín, Saoirse
    Róisín, Ciarán, Tomás, Eilidh, Björn, Søren, Åsa, Zoltán, Dóra, José
    María, Inés, Iñaki, Łukasz, Małgorzata, Anaïs, Gaël, Maël, Léa, François
    Émile, Ayşe, Çağan, Şule, Joël, Aurélie, Joaquín, Lucía, Raúl, Ewa
    Piotr, Andrés, Amara, Kwame, Chidi, Priya, Arjun, Aisha, Omar, Yusuf
    Fatima, Mei, Hiroshi, Leila, Rhys, Cerys, Dylan, Ffion, Isla, Finlay
    Hamish, Oliver, Amelia, Harry, Olivia, Jack, Mia, Noah, Ava, Leo
    Freya, Theo, Ruby, Arthur, Poppy, Alfie, Evie, Kai, Nia, Ella, Zain
    Hana, Mateus, Bogdan, Darius, Elif, Emre, Nadia, Samir, Sanjay, Deepika
    Tariq, Imani, Kofi, Adaeze, Ngozi, Tendai, Thandiwe, Sione, Mele, Rangi
    Aroha, Kiri, Anh, Minh, Jae-won, Ye-jin, Mary-Kate, Jean-Luc, D'Andre
    Ebony, Tobias, Willow, Jasper, Maisie, Ibrahim, Zeynep, Ilse, Henrik
    """
)

MIDDLE_NAMES = _names(
    """
    Rose, James, Mae, Alexander, Grace, Óscar, Louise, Edward, Seren, Iolo
    Marie, Kwabena, Nnamdi, Hélène, Ann, Dafydd, Joy, Ali, Jo, Béatrice
    """
)

# Apostrophes, spaces and diacritics first, then invented surnames (an obviously synthetic
# school), then common ones so the mix looks like a real register.
FAMILY_NAMES = _names(
    """
    O'Brien, Ó Súilleabháin, D'Souza, N'Diaye, O'Connor, Ní Bhriain, Nguyễn
    Müller, Öztürk, Çelik, Yılmaz, Wiśniewska, Dvořák, Håkansson, Sørensen
    Núñez, Peña, Gonçalves, Schäfer, Trần, Mac Giolla Phádraig, de la Cruz
    van der Berg, St. Clair, Smith-Okonkwo
    Fernsby, Quillfeather, Marrowdale, Thistlewood, Brackenridge, Ashcombe
    Wrenfield, Pellinore, Larkhollow, Cobbleworth, Dunmarrow, Eskerby, Fallowmere
    Gorsebrook, Hazelgarth, Ivybridge-Pole, Juniperhay, Kestrelwick, Lindenshaw
    Moorcastle, Nettlebank, Oakhurst-Vey, Pebbleton, Quarrendon, Rookwardine
    Sallowfield, Tansley-Brook, Umberleigh, Vetchley, Willowmere, Yarrowby
    Okafor, Adeyemi, Mensah, Kaur, Singh, Patel, Begum, Chowdhury, Khan
    Hussain, Chen, Wang, Tanaka, Kim, Park, Jones, Williams, Evans, Hughes
    Morgan, Price, Thomas, Taylor, Brown, Wilson, Walker, Wright, Robinson
    Hall, Green, Wood, Kowalczyk, Novák, García, Rossi, Ferreira, Ahmed
    MacLeod, McAllister, Campbell, Murphy, Kelly, Byrne, Lewis, Davies
    """
)

PLACE_NAMES = _names(
    """
    Fernsby, Marrowdale, Larkhollow, Eskerby, Fallowmere, Hazelgarth, Kestrelwick
    Lindenshaw, Pebbleton, Quarrendon, Sallowfield, Umberleigh, Vetchley
    """
)

TRUST_WORDS = _names(
    """
    Larkspur, Meadowsweet, Northwind, Riverstone, Silverbirch, Willowbrook
    """
)


def ascii_fold(text: str) -> str:
    """Lower-case ASCII letters and digits only: "Ó Súilleabháin" -> "osuilleabhain"."""
    decomposed = unicodedata.normalize("NFKD", text)
    # Letters NFKD does not decompose into ASCII: map the common ones by hand.
    decomposed = decomposed.translate(_NON_DECOMPOSING)
    return "".join(ch for ch in decomposed.lower() if ch.isascii() and ch.isalnum())


_NON_DECOMPOSING = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ı": "i", "đ": "d"})
