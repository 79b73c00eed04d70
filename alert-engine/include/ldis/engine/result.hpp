#pragma once

#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace ldis::engine {

// One problem with one field of an input, located by a JSON pointer ("" for the whole
// document) and explained in a sentence a person can act on.
struct FieldError {
    std::string path;
    std::string message;
    // The path's last token is a key the sender chose (an unknown field), not the schema's:
    // what was sent, as much as a value is (ShareablePath, receipt.hpp).
    bool sent_key = false;
    bool operator==(const FieldError&) const = default;
};

// An expected failure carried as a value (GCC 12 has no std::expected under C++20).
struct Error {
    std::string message;
};

// Either a T or an Error. Not thread-safe; a value type.
template <typename T>
class Result {
public:
    Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
    Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

    bool ok() const { return std::holds_alternative<T>(v_); }
    explicit operator bool() const { return ok(); }
    const T& value() const& { return std::get<T>(v_); }
    T& value() & { return std::get<T>(v_); }
    T&& value() && { return std::get<T>(std::move(v_)); }
    const Error& error() const { return std::get<Error>(v_); }

private:
    std::variant<T, Error> v_;
};

}  // namespace ldis::engine
