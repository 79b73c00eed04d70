#pragma once

#include <string>
#include <string_view>

namespace ldis::engine {

// How many of each kind of personal data a scrub removed. Coordinators see these
// counts, never the values.
struct ScrubCounts {
    int nhs_numbers = 0;
    int dates_of_birth = 0;
    int postcodes = 0;
    int phone_numbers = 0;
    int emails = 0;
    int prison_numbers = 0;
    int custody_numbers = 0;
    int names = 0;
    int addresses = 0;
    int vehicles = 0;
    int ni_numbers = 0;
    int hospital_numbers = 0;  // hospital numbers, MRNs and PNC ids
    int handles = 0;           // social media
    int ages = 0;              // next to a name
    int total() const {
        return nhs_numbers + dates_of_birth + postcodes + phone_numbers + emails + prison_numbers +
               custody_numbers + names + addresses + vehicles + ni_numbers + hospital_numbers +
               handles + ages;
    }
    ScrubCounts& operator+=(const ScrubCounts& other);
};

struct Scrubbed {
    std::string text;
    ScrubCounts counts;
};

// Removes personal data from free text before coordinators read it (docs/privacy.md; a
// second line: automatic alerts carry no free text at all). On RE2: linear time, whatever
// the input. NHS numbers (10 digits passing the modulus-11 check, spaced or not), dates of
// birth (after "DOB", "date of birth", "born"; or any full date before 2010, in figures or
// words), full UK postcodes (the postcode district stays: "ME7 5NY" becomes "ME7"), UK and
// international phone numbers, email addresses, social media handles, prison numbers
// (A1234BC), custody record numbers, National Insurance numbers, hospital numbers, MRNs
// and PNC ids, vehicle registrations (current and prefix formats), street addresses and
// flats, people's names (after a title; after "name", "patient", "found on", "home of",
// "friend", "partner" and family words; a forename of config/names/forenames.txt with the
// capitalised words after it) and an age next to a removed name. Doses, counts, times,
// recent dates, ward numbers, tablet imprints, postcode districts and references are left
// as they are. Pure; thread-safe.
Scrubbed Scrub(std::string_view text);

// True if the ten digits pass the NHS modulus-11 check.
bool IsValidNhsNumber(std::string_view ten_digits);

// A count for one ward or establishment as shown outside the system: below 3 (and
// above 0) it is "fewer than 3".
std::string SmallCount(long long n);

}  // namespace ldis::engine
