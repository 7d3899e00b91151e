//! The numbering data behind `e164`: every ITU-T E.164 calling code, and the detailed table of
//! countries (calling code, trunk prefix, national number lengths).

use super::e164::Country;

// ---------------------------------------------------------------------------------------------
// Data: the ITU-T E.164 calling codes
// ---------------------------------------------------------------------------------------------

/// Every assigned ITU-T E.164 country calling code (geographic, shared and global services),
/// per the ITU-T E.164 Annex list. Spare and withdrawn codes (e.g. 388 ETNS, 871–874) are absent.
/// Sorted ascending; must be prefix-free (enforced at compile time).
pub(super) const ITU_CALLING_CODES: &[u16] = &[
    1,   // NANP: US, CA and the Caribbean
    7,   // RU, KZ
    20,  // EG
    27,  // ZA
    30,  // GR
    31,  // NL
    32,  // BE
    33,  // FR
    34,  // ES
    36,  // HU
    39,  // IT, VA
    40,  // RO
    41,  // CH
    43,  // AT
    44,  // GB, GG, IM, JE
    45,  // DK
    46,  // SE
    47,  // NO, SJ
    48,  // PL
    49,  // DE
    51,  // PE
    52,  // MX
    53,  // CU
    54,  // AR
    55,  // BR
    56,  // CL
    57,  // CO
    58,  // VE
    60,  // MY
    61,  // AU, CX, CC
    62,  // ID
    63,  // PH
    64,  // NZ
    65,  // SG
    66,  // TH
    81,  // JP
    82,  // KR
    84,  // VN
    86,  // CN
    90,  // TR
    91,  // IN
    92,  // PK
    93,  // AF
    94,  // LK
    95,  // MM
    98,  // IR
    211, // SS
    212, // MA, EH
    213, // DZ
    216, // TN
    218, // LY
    220, // GM
    221, // SN
    222, // MR
    223, // ML
    224, // GN
    225, // CI
    226, // BF
    227, // NE
    228, // TG
    229, // BJ
    230, // MU
    231, // LR
    232, // SL
    233, // GH
    234, // NG
    235, // TD
    236, // CF
    237, // CM
    238, // CV
    239, // ST
    240, // GQ
    241, // GA
    242, // CG
    243, // CD
    244, // AO
    245, // GW
    246, // IO (Diego Garcia)
    247, // AC (Ascension)
    248, // SC
    249, // SD
    250, // RW
    251, // ET
    252, // SO
    253, // DJ
    254, // KE
    255, // TZ
    256, // UG
    257, // BI
    258, // MZ
    260, // ZM
    261, // MG
    262, // RE, YT
    263, // ZW
    264, // NA
    265, // MW
    266, // LS
    267, // BW
    268, // SZ
    269, // KM
    290, // SH, TA
    291, // ER
    297, // AW
    298, // FO
    299, // GL
    350, // GI
    351, // PT
    352, // LU
    353, // IE
    354, // IS
    355, // AL
    356, // MT
    357, // CY
    358, // FI, AX
    359, // BG
    370, // LT
    371, // LV
    372, // EE
    373, // MD
    374, // AM
    375, // BY
    376, // AD
    377, // MC
    378, // SM
    379, // VA (assigned, unused)
    380, // UA
    381, // RS
    382, // ME
    383, // XK
    385, // HR
    386, // SI
    387, // BA
    389, // MK
    420, // CZ
    421, // SK
    423, // LI
    500, // FK
    501, // BZ
    502, // GT
    503, // SV
    504, // HN
    505, // NI
    506, // CR
    507, // PA
    508, // PM
    509, // HT
    590, // GP, BL, MF
    591, // BO
    592, // GY
    593, // EC
    594, // GF
    595, // PY
    596, // MQ
    597, // SR
    598, // UY
    599, // CW, BQ
    670, // TL
    672, // NF, AQ (Australian External Territories)
    673, // BN
    674, // NR
    675, // PG
    676, // TO
    677, // SB
    678, // VU
    679, // FJ
    680, // PW
    681, // WF
    682, // CK
    683, // NU
    685, // WS
    686, // KI
    687, // NC
    688, // TV
    689, // PF
    690, // TK
    691, // FM
    692, // MH
    800, // International Freephone Service
    808, // International Shared Cost Service
    850, // KP
    852, // HK
    853, // MO
    855, // KH
    856, // LA
    870, // Inmarsat SNAC
    878, // Universal Personal Telecommunication
    880, // BD
    881, // Global Mobile Satellite System
    882, // International Networks
    883, // International Networks
    886, // TW
    888, // Telecommunications for Disaster Relief (OCHA)
    960, // MV
    961, // LB
    962, // JO
    963, // SY
    964, // IQ
    965, // KW
    966, // SA
    967, // YE
    968, // OM
    970, // PS
    971, // AE
    972, // IL
    973, // BH
    974, // QA
    975, // BT
    976, // MN
    977, // NP
    979, // International Premium Rate Service
    991, // ITPCS trial service
    992, // TJ
    993, // TM
    994, // AZ
    995, // GE
    996, // KG
    998, // UZ
];

// ---------------------------------------------------------------------------------------------
// Data: the detailed country table
// ---------------------------------------------------------------------------------------------

/// Shorthand for a table row.
const fn c(
    iso: &'static str,
    calling_code: u16,
    trunk: Option<&'static str>,
    min: u8,
    max: u8,
) -> Country {
    Country {
        iso,
        calling_code,
        trunk_prefix: trunk,
        nsn_min: min,
        nsn_max: max,
    }
}

/// Trunk prefix `0`, the most common one.
const Z: Option<&'static str> = Some("0");

/// The detailed table, grouped by region: ISO code, calling code, trunk prefix, NSN length range.
///
/// Ranges follow ITU national numbering plans / libphonenumber's possible lengths for
/// geographic (fixed) and mobile numbers, erring on the generous side; short codes and most
/// special-service ranges are left out. Every row keeps calling code + NSN within 8..=15 digits,
/// and countries sharing a calling code share a trunk prefix (both checked by tests).
pub(super) const COUNTRY_TABLE: &[Country] = &[
    // --- North America (NANP, +1): 10-digit NSN, trunk prefix 1 -----------------------------
    c("US", 1, Some("1"), 10, 10),
    c("CA", 1, Some("1"), 10, 10),
    c("PR", 1, Some("1"), 10, 10),
    c("DO", 1, Some("1"), 10, 10),
    c("JM", 1, Some("1"), 10, 10),
    c("TT", 1, Some("1"), 10, 10),
    c("BS", 1, Some("1"), 10, 10),
    c("BB", 1, Some("1"), 10, 10),
    // --- Central America and the Caribbean ----------------------------------------------------
    c("MX", 52, None, 10, 10), // trunk prefix 01 abolished in 2019
    c("GT", 502, None, 8, 8),
    c("SV", 503, None, 8, 8),
    c("HN", 504, None, 8, 8),
    c("NI", 505, None, 8, 8),
    c("CR", 506, None, 8, 8),
    c("PA", 507, None, 7, 8),
    c("CU", 53, Z, 6, 8),
    c("HT", 509, None, 8, 8),
    // --- South America --------------------------------------------------------------------------
    c("CO", 57, Z, 10, 10),
    c("VE", 58, Z, 10, 10),
    c("EC", 593, Z, 8, 9),
    c("PE", 51, Z, 8, 9),
    c("BO", 591, Z, 8, 8),
    c("BR", 55, Z, 10, 11),
    c("PY", 595, Z, 7, 9),
    c("UY", 598, Z, 8, 8),
    c("AR", 54, Z, 10, 11), // mobiles: 9 + 10 digits internationally
    c("CL", 56, None, 9, 9),
    // --- Western Europe -------------------------------------------------------------------------
    c("GB", 44, Z, 9, 10),
    c("IE", 353, Z, 7, 9),
    c("FR", 33, Z, 9, 9),
    c("MC", 377, Z, 8, 9),
    c("BE", 32, Z, 8, 9),
    c("NL", 31, Z, 9, 9),
    c("LU", 352, None, 6, 11),
    c("DE", 49, Z, 6, 13),
    c("AT", 43, Z, 6, 13),
    c("CH", 41, Z, 9, 9),
    c("LI", 423, None, 7, 9),
    c("IT", 39, None, 6, 11), // fixed-line NSNs keep their leading 0
    c("SM", 378, None, 6, 10),
    c("MT", 356, None, 8, 8),
    c("ES", 34, None, 9, 9),
    c("AD", 376, None, 6, 9),
    c("PT", 351, None, 9, 9),
    c("GI", 350, None, 8, 8),
    // --- Northern Europe ------------------------------------------------------------------------
    c("DK", 45, None, 8, 8),
    c("NO", 47, None, 8, 8),
    c("SE", 46, Z, 7, 10),
    c("FI", 358, Z, 5, 12),
    c("IS", 354, None, 7, 9),
    c("EE", 372, None, 7, 8),
    c("LV", 371, None, 8, 8),
    c("LT", 370, Some("8"), 8, 8),
    // --- Central and Eastern Europe -------------------------------------------------------------
    c("PL", 48, None, 9, 9),
    c("CZ", 420, None, 9, 9),
    c("SK", 421, Z, 9, 9),
    c("HU", 36, Some("06"), 8, 9),
    c("SI", 386, Z, 8, 8),
    c("HR", 385, Z, 8, 9),
    c("BA", 387, Z, 8, 9),
    c("RS", 381, Z, 7, 10),
    c("ME", 382, Z, 8, 9),
    c("XK", 383, Z, 8, 9),
    c("MK", 389, Z, 8, 8),
    c("AL", 355, Z, 8, 9),
    c("GR", 30, None, 10, 10),
    c("CY", 357, None, 8, 8),
    c("BG", 359, Z, 6, 9),
    c("RO", 40, Z, 9, 9),
    c("MD", 373, Z, 8, 8),
    c("UA", 380, Z, 9, 9),
    c("BY", 375, Some("80"), 9, 9), // dialled nationally as 8 0xx …
    c("RU", 7, Some("8"), 10, 10),
    c("KZ", 7, Some("8"), 10, 10),
    c("TR", 90, Z, 10, 10),
    c("GE", 995, Z, 9, 9),
    c("AM", 374, Z, 8, 8),
    c("AZ", 994, Z, 9, 9),
    // --- Middle East ----------------------------------------------------------------------------
    c("IL", 972, Z, 8, 9),
    c("PS", 970, Z, 8, 9),
    c("JO", 962, Z, 8, 9),
    c("LB", 961, Z, 7, 8),
    c("SY", 963, Z, 8, 9),
    c("IQ", 964, Z, 8, 10),
    c("SA", 966, Z, 8, 9),
    c("AE", 971, Z, 8, 9),
    c("QA", 974, None, 8, 8),
    c("BH", 973, None, 8, 8),
    c("KW", 965, None, 8, 8),
    c("OM", 968, None, 8, 8),
    c("YE", 967, Z, 7, 9),
    c("IR", 98, Z, 10, 10),
    // --- South and Central Asia -----------------------------------------------------------------
    c("AF", 93, Z, 9, 9),
    c("PK", 92, Z, 9, 10),
    c("IN", 91, Z, 10, 10),
    c("BD", 880, Z, 8, 10),
    c("LK", 94, Z, 9, 9),
    c("NP", 977, Z, 8, 10),
    c("BT", 975, None, 7, 8),
    c("MV", 960, None, 7, 7),
    c("UZ", 998, Some("8"), 9, 9),
    c("KG", 996, Z, 9, 9),
    c("MN", 976, Z, 8, 8),
    // --- East Asia ------------------------------------------------------------------------------
    c("CN", 86, Z, 9, 11),
    c("HK", 852, None, 8, 8),
    c("MO", 853, None, 8, 8),
    c("TW", 886, Z, 8, 9),
    c("JP", 81, Z, 9, 10),
    c("KR", 82, Z, 8, 10),
    // --- South-East Asia (ASEAN and Timor-Leste) -------------------------------------------------
    c("VN", 84, Z, 9, 10),
    c("TH", 66, Z, 8, 9),
    c("MY", 60, Z, 8, 10),
    c("SG", 65, None, 8, 8),
    c("ID", 62, Z, 7, 12),
    c("PH", 63, Z, 8, 10),
    c("KH", 855, Z, 8, 9),
    c("LA", 856, Z, 8, 10),
    c("MM", 95, Z, 6, 10),
    c("BN", 673, None, 7, 7),
    c("TL", 670, None, 7, 8),
    // --- Oceania --------------------------------------------------------------------------------
    c("AU", 61, Z, 9, 9),
    c("NZ", 64, Z, 8, 10),
    c("PG", 675, None, 7, 8),
    c("FJ", 679, None, 7, 7),
    // --- North Africa ---------------------------------------------------------------------------
    c("EG", 20, Z, 8, 10),
    c("LY", 218, Z, 8, 9),
    c("TN", 216, None, 8, 8),
    c("DZ", 213, Z, 8, 9),
    c("MA", 212, Z, 9, 9),
    c("SD", 249, Z, 9, 9),
    // --- West and Central Africa ----------------------------------------------------------------
    c("SN", 221, None, 9, 9),
    c("ML", 223, None, 8, 8),
    c("BF", 226, None, 8, 8),
    c("NE", 227, None, 8, 8),
    c("CI", 225, None, 10, 10), // 10-digit plan since 2021
    c("GH", 233, Z, 9, 9),
    c("TG", 228, None, 8, 8),
    c("BJ", 229, None, 8, 10), // moving from 8 to 10 digits
    c("NG", 234, Z, 7, 10),
    c("CM", 237, None, 9, 9),
    c("CG", 242, None, 9, 9),
    c("CD", 243, Z, 9, 9),
    c("AO", 244, None, 9, 9),
    // --- East Africa ----------------------------------------------------------------------------
    c("ET", 251, Z, 9, 9),
    c("SS", 211, Z, 9, 9),
    c("KE", 254, Z, 7, 10),
    c("UG", 256, Z, 9, 9),
    c("TZ", 255, Z, 9, 9),
    c("RW", 250, Z, 9, 9),
    c("BI", 257, None, 8, 8),
    c("MG", 261, Z, 9, 9),
    c("MU", 230, None, 7, 8),
    // --- Southern Africa ------------------------------------------------------------------------
    c("MZ", 258, None, 8, 9),
    c("MW", 265, Z, 7, 9),
    c("ZM", 260, Z, 9, 9),
    c("ZW", 263, Z, 8, 10),
    c("NA", 264, Z, 8, 10),
    c("BW", 267, None, 7, 8),
    c("ZA", 27, Z, 9, 9),
    c("LS", 266, None, 8, 8),
    c("SZ", 268, None, 8, 8),
];
