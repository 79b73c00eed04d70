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
    int total() const {
        return nhs_numbers + dates_of_birth + postcodes + phone_numbers + emails + prison_numbers +
               custody_numbers;
    }
    ScrubCounts& operator+=(const ScrubCounts& other);
};

struct Scrubbed {
    std::string text;
    ScrubCounts counts;
};

// Removes personal data from free text before it is rendered or exported (DESIGN §6):
// NHS numbers (10 digits passing the modulus-11 check, spaced or not), dates of birth
// (after "DOB", "date of birth", "born"; or a full date before 2010), full UK postcodes
// (the postcode district stays: "ME7 5NY" becomes "ME7"), phone numbers, email
// addresses, prison numbers (A1234BC) and custody record numbers. Doses, times,
// recent dates and tablet markings are left as they are. Pure; thread-safe.
Scrubbed Scrub(std::string_view text);

// True if the ten digits pass the NHS modulus-11 check.
bool IsValidNhsNumber(std::string_view ten_digits);

// A count for one ward or establishment as shown outside the system: below 3 (and
// above 0) it is "fewer than 3".
std::string SmallCount(long long n);

}  // namespace ldis::engine
