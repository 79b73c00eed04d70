#pragma once
// What the store tests grade with: the shipped substances, rules and alert templates, and
// the shipped validator that makes their reports.
#include <boost/json.hpp>
#include <functional>
#include <memory>

#include "ldis/engine/report_validator.hpp"
#include "ldis/engine/store.hpp"

namespace ldis::test {

// The shipped grading files (config/substances.toml, config/rules.toml, templates/alert),
// links to https://ldis.example.org, no partners.
std::shared_ptr<const engine::GradingSetup> ShippedGrading();

// `report` through the shipped validator (config/schema/report.schema.json and
// config/areas.toml, loaded once), as intake would: what it says, errors and all.
engine::Validation ValidateShipped(const boost::json::object& report);

// A new valid red report (a death) stored by `store` as if from MQTT; a test failure, and
// an empty result, when it is not stored.
engine::StoredReport SubmitRed(engine::Store& store);

// An outbox row of a red alert's version 2 for one partner's email (desk@example.org, id
// 42), sections with markup in them and one of 5,000 characters: what delivery tests send.
engine::OutboxItem RedAlertItem();

// Runs `first` and `second` on two threads released at the same moment (two instances
// racing), and waits for both.
void AtOnce(const std::function<void()>& first, const std::function<void()>& second);

}  // namespace ldis::test
