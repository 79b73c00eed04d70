#include "ldis/engine/scrubber.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "support/reports.hpp"

using ldis::engine::IsValidNhsNumber;
using ldis::engine::Scrub;

namespace {

// Makes an NHS number: nine random digits and the modulus-11 check digit, or a
// wrong check digit when `valid` is false. Returns "" when no valid check exists.
std::string NhsNumber(std::mt19937& rng, bool valid) {
    std::string d;
    int sum = 0;
    for (int i = 0; i < 9; ++i) {
        const int digit = static_cast<int>(rng() % 10);
        d.push_back(static_cast<char>('0' + digit));
        sum += digit * (10 - i);
    }
    int check = 11 - sum % 11;
    if (check == 11) check = 0;
    if (check == 10) return {};
    d.push_back(
        static_cast<char>('0' + (valid ? check : (check + 1 + static_cast<int>(rng() % 9)) % 10)));
    return d;
}

std::vector<std::string> Lines(const std::string& file) {
    std::ifstream in(ldis::test::SourcePath("tests/fixtures/scrubber/" + file));
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line[0] != '#') lines.push_back(line);
    }
    return lines;
}

std::string WithoutSpaces(std::string s) {
    std::string out;
    for (char c : s) {
        if (c != ' ' && c != '-') out.push_back(c);
    }
    return out;
}

TEST(ScrubberTest, NhsCheckDigit) {
    EXPECT_TRUE(IsValidNhsNumber("9434765919"));
    EXPECT_TRUE(IsValidNhsNumber("4010232137"));
    EXPECT_FALSE(IsValidNhsNumber("9434765918"));
    EXPECT_FALSE(IsValidNhsNumber("943476591"));
    EXPECT_FALSE(IsValidNhsNumber("94347659a9"));
}

TEST(ScrubberTest, GeneratedValidNhsNumbersAreRemovedInEveryShape) {
    std::mt19937 rng(20261123);
    int made = 0;
    while (made < 500) {
        const std::string n = NhsNumber(rng, true);
        if (n.empty()) continue;
        ++made;
        ASSERT_TRUE(IsValidNhsNumber(n)) << n;
        for (const std::string& shape :
             {n, n.substr(0, 3) + " " + n.substr(3, 3) + " " + n.substr(6),
              n.substr(0, 3) + "-" + n.substr(3, 3) + "-" + n.substr(6)}) {
            const auto out = Scrub("NHS number " + shape + " seen in ED.");
            EXPECT_EQ(out.text.find(shape), std::string::npos) << shape << " -> " << out.text;
            EXPECT_EQ(out.counts.nhs_numbers, 1) << shape;
        }
    }
}

TEST(ScrubberTest, GeneratedInvalidNhsNumbersAreNotCountedAsNhsNumbers) {
    std::mt19937 rng(42);
    int made = 0;
    while (made < 500) {
        const std::string n = NhsNumber(rng, false);
        if (n.empty()) continue;
        ++made;
        ASSERT_FALSE(IsValidNhsNumber(n)) << n;
        const auto out = Scrub("Batch " + n + " seized.");
        EXPECT_EQ(out.counts.nhs_numbers, 0) << n;
    }
}

TEST(ScrubberTest, NoPersonalDataSurvivesTheCorpus) {
    const auto lines = Lines("personal.txt");
    ASSERT_GE(lines.size(), 50u);
    for (const auto& line : lines) {
        const auto bar = line.find(" || ");
        ASSERT_NE(bar, std::string::npos) << line;
        const std::string sentence = line.substr(0, bar);
        const auto out = Scrub(sentence);
        EXPECT_GT(out.counts.total(), 0) << sentence;
        std::string secrets = line.substr(bar + 4);
        for (std::size_t start = 0; start <= secrets.size();) {
            auto end = secrets.find(" | ", start);
            if (end == std::string::npos) end = secrets.size();
            const std::string secret = secrets.substr(start, end - start);
            EXPECT_EQ(out.text.find(secret), std::string::npos)
                << "\"" << secret << "\" survived in: " << out.text;
            EXPECT_EQ(WithoutSpaces(out.text).find(WithoutSpaces(secret)), std::string::npos)
                << "\"" << secret << "\" survived (ignoring spaces) in: " << out.text;
            start = end + 3;
        }
    }
}

TEST(ScrubberTest, ClinicalSentencesAreNotMangled) {
    const auto lines = Lines("clinical.txt");
    ASSERT_GE(lines.size(), 25u);
    for (const auto& line : lines) {
        const auto out = Scrub(line);
        EXPECT_EQ(out.text, line);
        EXPECT_EQ(out.counts.total(), 0) << line;
    }
}

TEST(ScrubberTest, PostcodeDistrictStays) {
    const auto out = Scrub("Found near ME7 5NY and me8 0AA.");
    EXPECT_EQ(out.text, "Found near ME7 and ME8.");
    EXPECT_EQ(out.counts.postcodes, 2);
}

TEST(ScrubberTest, CountsEachKind) {
    const auto out = Scrub(
        "NHS 943 476 5919, DOB 12/03/1988, ME7 5NY, 07700 900123, a@example.org, A1234BC, "
        "custody record 12/34567/26.");
    EXPECT_EQ(out.counts.nhs_numbers, 1);
    EXPECT_EQ(out.counts.dates_of_birth, 1);
    EXPECT_EQ(out.counts.postcodes, 1);
    EXPECT_EQ(out.counts.phone_numbers, 1);
    EXPECT_EQ(out.counts.emails, 1);
    EXPECT_EQ(out.counts.prison_numbers, 1);
    EXPECT_EQ(out.counts.custody_numbers, 1);
    EXPECT_EQ(out.counts.total(), 7);
}

// The privacy corpus (tests/fixtures/privacy/identifying.txt): names from many
// backgrounds, addresses and flats, registrations, NI, NHS and phone numbers, dates,
// handles and emails. What a coordinator reads keeps none of them.
TEST(ScrubberTest, NamesAddressesAndNumbersOfTheCorpusAreRemoved) {
    std::ifstream in(ldis::test::SourcePath("tests/fixtures/privacy/identifying.txt"));
    int texts = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        ++texts;
        const auto tab = line.find('\t');
        const std::string text = line.substr(0, tab);
        const auto out = Scrub(text);
        std::istringstream ids(line.substr(tab + 1));
        for (std::string id; std::getline(ids, id, '|');) {
            EXPECT_EQ(out.text.find(id), std::string::npos) << text << " -> " << out.text;
            const auto space = id.rfind(' ');
            if (space != std::string::npos && id.find_first_of("0123456789") == std::string::npos) {
                EXPECT_EQ(out.text.find(id.substr(space + 1)), std::string::npos)
                    << text << " -> " << out.text;
            }
        }
    }
    EXPECT_GE(texts, 100);
}

TEST(ScrubberTest, NamesAndAddressesInEveryShape) {
    for (const auto& [text, gone] : std::vector<std::pair<std::string, std::string>>{
             {"brown powder found on John Smith, 34, of 12 Elm Road Dartford", "John|Smith|34|Elm"},
             {"marked bag from Sarah Jones (Sarah's flat, 4 Oak Close)", "Jones|Oak Close"},
             {"collapsed at the home of Peter Brown, 22 Station Road", "Peter|Brown|Station"},
             {"Mr O'Connor said Siobhan O'Connor sold it", "O'Connor|Siobhan"},
             {"Mrs Fairweather-Hughes rang", "Fairweather"},
             {"patient Darren McAllister aged 41", "McAllister|41"},
             {"friend: Mei Ling Chen", "Mei|Ling|Chen"},
             {"Flat 3b, 110a Rochester Way", "Flat 3b|Rochester"},
             {"car KN68 XYZ and an old Y123 ABC", "KN68|Y123"},
             {"NI number QQ 12 34 56 C and AB123456D", "QQ 12|AB123456D"},
             {"MRN: RX1234567, PNC 12/345678A", "RX1234567|12/345678A"},
             {"snap: lil_daz, insta @kentboy99", "lil_daz|kentboy99"},
             {"ring +33 6 12 34 56 78", "12 34 56"},
             {"dob 3rd March 1990; seen 14 Feb 2001", "March 1990|Feb 2001"}}) {
        const auto out = Scrub(text);
        std::istringstream words(gone);
        for (std::string word; std::getline(words, word, '|');)
            EXPECT_EQ(out.text.find(word), std::string::npos) << text << " -> " << out.text;
    }
}

TEST(ScrubberTest, ClinicalDetailSurvives) {
    for (const std::string text :
         {"2 mg naloxone at 14:30 on ward 7, then 400 micrograms",
          "tablets marked MSJ, DAN 5620 and T-20; two in ME4",
          "see national alert NatPSA/2023/005/UKHSA and LDIS KM-2026-0007, KM-R000123",
          "Patient aged 16 in resus, GCS 8; 3 cases on B wing",
          "Kent Police seized 1,000 tablets on the A2 on 20 November",
          "Medway Maritime Hospital admitted 2 at 03:15"}) {
        const auto out = Scrub(text);
        EXPECT_EQ(out.text, text);
        EXPECT_EQ(out.counts.total(), 0) << text;
    }
}

// Found by fuzz_scrubber: a match left alone ("202 9434765" fails the NHS check) hid a
// valid NHS number that starts inside it, after a space. One scrub removes it.
TEST(ScrubberTest, ANumberLeftAloneDoesNotHideAnNhsNumberInsideIt) {
    const auto once = Scrub("Observed on 22/11/202 9434765919 | 12/03/1988");
    EXPECT_EQ(once.text.find("9434765919"), std::string::npos) << once.text;
    EXPECT_EQ(once.counts.nhs_numbers, 1);
    EXPECT_EQ(Scrub(once.text).counts.total(), 0) << once.text;
}

// Found by fuzz_scrubber: a replacement glued to the next word ("1988Born", "20NHS")
// makes a word boundary that was not there, and with it a match for its own rule or one
// that ran before. One scrub finds them all; a second finds nothing.
TEST(ScrubberTest, AReplacementGluedToTheNextWordLeavesNothingForASecondScrub) {
    for (const std::string text :
         {"dob 12/03/1988Born 2/9/20Born 3/9/20Born 4/9/20NHS no: 9434165919, seen",
          "Partner's number 0770090079NHS number 943 4761634 000111.",
          "Drop-in at TN23 rep - seizud 34 (dob 1/2/1980)"}) {
        const auto once = Scrub(text);
        EXPECT_EQ(once.text.find("9434165919"), std::string::npos) << once.text;
        EXPECT_EQ(once.text.find("943 476"), std::string::npos) << once.text;
        const auto twice = Scrub(once.text);
        EXPECT_EQ(twice.counts.total(), 0) << once.text << " -> " << twice.text;
    }
}

// The label of a date of birth stays, in the reporter's own spelling; the date goes.
TEST(ScrubberTest, ALabelledDateOfBirthKeepsItsLabel) {
    for (const auto& [text, expected] : std::vector<std::pair<std::string, std::string>>{
             {"DOB 12/03/1988 per notes", "DOB [date of birth removed] per notes"},
             {"d.o.b. 3rd March 1990", "d.o.b. [date of birth removed]"},
             {"D O B: 30.11.85", "D O B [date of birth removed]"},
             {"Date of Birth is 1995-07-21", "Date of Birth [date of birth removed]"},
             {"born on 14 Feb 2001", "born on [date of birth removed]"},
             {"Born March 3, 1990.", "Born [date of birth removed]."}}) {
        const auto out = Scrub(text);
        EXPECT_EQ(out.text, expected) << text;
        EXPECT_EQ(out.counts.dates_of_birth, 1) << text;
    }
}

TEST(ScrubberTest, SmallCountsAreSuppressed) {
    EXPECT_EQ(ldis::engine::SmallCount(0), "0");
    EXPECT_EQ(ldis::engine::SmallCount(1), "fewer than 3");
    EXPECT_EQ(ldis::engine::SmallCount(2), "fewer than 3");
    EXPECT_EQ(ldis::engine::SmallCount(3), "3");
}

}  // namespace
