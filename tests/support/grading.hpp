#pragma once
// What the store tests grade with: the shipped substances, rules and alert templates.
#include <functional>
#include <memory>

#include "ldis/engine/store.hpp"

namespace ldis::test {

// The shipped grading files (config/substances.toml, config/rules.toml, templates/alert),
// links to https://ldis.example.org, no partners.
std::shared_ptr<const engine::GradingSetup> ShippedGrading();

// Runs `first` and `second` on two threads released at the same moment (two instances
// racing), and waits for both.
void AtOnce(const std::function<void()>& first, const std::function<void()>& second);

}  // namespace ldis::test
