#pragma once
// The shipped configuration files, each loaded once per test program. Header-only, so that
// the domain's tests, which link no store, can use it (support/grading.hpp has the whole
// grading setup for the others).

#include "ldis/engine/areas.hpp"
#include "ldis/engine/grading.hpp"
#include "ldis/engine/substances.hpp"
#include "support/reports.hpp"

namespace ldis::test {

inline const engine::Areas& ShippedAreas() {
    static const engine::Areas areas = engine::Areas::LoadFile(SourcePath("config/areas.toml"));
    return areas;
}

inline const engine::Substances& ShippedSubstances() {
    static const engine::Substances substances =
        engine::Substances::LoadFile(SourcePath("config/substances.toml"));
    return substances;
}

inline const engine::Rules& ShippedRules() {
    static const engine::Rules rules =
        engine::Rules::LoadFile(SourcePath("config/rules.toml"), ShippedSubstances());
    return rules;
}

}  // namespace ldis::test
