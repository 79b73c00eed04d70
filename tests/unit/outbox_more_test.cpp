// The outbox on both stores, continued: notices about no alert, peers' versions, public
// alerts, partners' answers, coordinators' versions and photos (outbox_fixture.hpp).
#include "unit/outbox_fixture.hpp"

namespace ldis::test::outbox {

// Issue 16 §3: a notice about no alert (a feed fallen silent) is a delivery without one: it
// is claimed with what it renders from, fails for good with a word to the coordinators like
// any other, and the feed's state is written in its transaction.
TEST_P(OutboxTest, ANoticeAboutNoAlertIsQueuedClaimedAndSettledLikeAnyOther) {
    Store::Notice notice;
    notice.kind = ldis::engine::kKindFeedSilent;
    notice.detail = R"({"source_type":"custody","organisation":"Medway custody"})";
    notice.audit_action = "feed.silent";
    notice.subject = "feed:custody/Medway custody";
    notice.setting_key = "feed:custody/Medway custody";
    notice.setting_value = R"({"silent":true,"since_ms":1})";
    const auto queued = store_->QueueNotice(notice, Now());
    ASSERT_TRUE(queued.ok()) << queued.error().message;
    ASSERT_GE(queued.value(), 1);
    EXPECT_EQ(store_->Setting("feed:custody/Medway custody"), notice.setting_value);
    const auto items = Claim();
    ASSERT_EQ(items.size(), static_cast<std::size_t>(queued.value()));
    for (const auto& it : items) {
        EXPECT_EQ(it.kind, "feed_silent");
        EXPECT_EQ(it.reference, "");
        EXPECT_EQ(it.version, 0);
        EXPECT_EQ(it.detail, notice.detail);
    }
    // Failed for good: listed with the failed deliveries the dashboard shows (as a failed
    // notice to the coordinators is: no word about it goes to them by the same way).
    std::vector<DeliveryOutcome> failed;
    for (const auto& it : items)
        failed.push_back({it.id, DeliveryOutcome::Kind::kFailed, "550", -1});
    Complete(failed);
    const auto rows = store_->Deliveries("");
    ASSERT_EQ(rows.size(), items.size());
    EXPECT_EQ(rows.front().status, "failed");
    EXPECT_EQ(rows.front().kind, "feed_silent");
    EXPECT_EQ(rows.front().reference, "");
    EXPECT_TRUE(Claim().empty());
    EXPECT_TRUE(store_->VerifyAudit().ok());
}

// Issue 16 §1 on both stores: a peer's version stored once; red forwarded at once to the
// partners who subscribe to it, marked as the peer's; its update reaches them again and its
// cancellation exactly them; amber waits for a decision, taken once.
TEST_P(OutboxTest, APeersVersionsAreStoredOnceForwardedByPolicyAndDecidedOnce) {
    FederatedVersion v;
    v.peer = "medway";
    v.reference = "KM-2026-0007";
    v.version = 1;
    v.identifier = "KM-2026-0007-v1";
    v.msg_type = "Alert";
    v.cap_status = "Actual";
    v.level = Level::kRed;
    v.authority = "Medway";
    v.district = "Medway";
    v.family = "nitazene";
    v.headline = "Red Drug Alert KM-2026-0007 v1: nitazene in Medway";
    v.description = "Two deaths after heroin bought in Gillingham.";
    v.instruction = "Carry naloxone.";
    v.sequence = 10;
    v.cap = "<alert/>";
    auto first = store_->ReceiveFederated(v, FederatedPolicy::kForward, "Medway LDIS", Now());
    ASSERT_TRUE(first.ok()) << first.error().message;
    EXPECT_TRUE(first.value().stored);
    EXPECT_EQ(first.value().decision, "forwarded");
    EXPECT_EQ(first.value().deliveries, 2);  // ed (webhook) and police; not Kent-only
    EXPECT_EQ(store_->Setting("federation:last:medway"), "10");
    v.sequence = 11;  // the same version again, a new copy: nothing new
    const auto again = store_->ReceiveFederated(v, FederatedPolicy::kForward, "Medway LDIS", Now());
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(again.value().stored);
    EXPECT_EQ(again.value().deliveries, 0);
    EXPECT_EQ(store_->Setting("federation:last:medway"), "11");

    // Claimed as an alert of the peer's: its text from the detail.
    const auto items = Claim();
    ASSERT_EQ(items.size(), 2u);
    for (const auto& it : items) {
        EXPECT_EQ(it.kind, "federated");
        EXPECT_EQ(it.reference, "KM-2026-0007");
        EXPECT_EQ(it.version, 1);
        EXPECT_EQ(it.level, "red");
        EXPECT_EQ(it.status, "issued");
        EXPECT_NE(it.body.find("Carry naloxone."), std::string::npos);
        EXPECT_NE(it.detail.find("Medway LDIS"), std::string::npos);
    }
    // The ED's webhook fails for good: the peer's version falls back to the ED's email as
    // the peer's version still (not an alert of this instance's), and the coordinators hear.
    std::vector<DeliveryOutcome> done;
    for (const auto& it : items) {
        const bool ed = it.partner == "ed";
        done.push_back({it.id,
                        ed ? DeliveryOutcome::Kind::kFailed : DeliveryOutcome::Kind::kDelivered,
                        ed ? "410 Gone" : "", -1});
    }
    Complete(done);
    EXPECT_EQ(Recipients(1, "federated"),
              (std::multiset<std::string>{"ed/hook", "ed/backup", "police/desk"}));
    EXPECT_TRUE(Recipients(1, "alert").empty());
    EXPECT_EQ(Recipients(1, "dead_letter"), (std::multiset<std::string>{"coord/team"}));
    const auto after = Claim();
    done.clear();
    int fallbacks = 0;
    for (const auto& it : after) {
        done.push_back({it.id, DeliveryOutcome::Kind::kDelivered, "", -1});
        if (it.partner != "ed") continue;
        ++fallbacks;
        EXPECT_EQ(it.kind, "federated");
        EXPECT_EQ(it.contact, "backup");
        EXPECT_EQ(it.reference, "KM-2026-0007");
        EXPECT_NE(it.body.find("Carry naloxone."), std::string::npos);
    }
    EXPECT_EQ(fallbacks, 1);
    Complete(done);

    // Its cancellation, whatever the policy now says, reaches exactly those partners,
    // each through the contact that last reached it.
    v.version = 2;
    v.identifier = "KM-2026-0007-v2";
    v.msg_type = "Cancel";
    v.sequence = 12;
    const auto cancel = store_->ReceiveFederated(v, FederatedPolicy::kRecord, "Medway LDIS", Now());
    ASSERT_TRUE(cancel.ok());
    EXPECT_EQ(cancel.value().decision, "forwarded");
    EXPECT_EQ(cancel.value().deliveries, 2);
    EXPECT_EQ(Recipients(2, "federated"), (std::multiset<std::string>{"ed/backup", "police/desk"}));

    // Amber under review: nothing sent until a coordinator adopts it, and only once.
    FederatedVersion amber = v;
    amber.reference = "KM-2026-0008";
    amber.identifier = "KM-2026-0008-v1";
    amber.version = 1;
    amber.msg_type = "Alert";
    amber.level = Level::kAmber;
    amber.sequence = 13;
    const auto review =
        store_->ReceiveFederated(amber, FederatedPolicy::kReview, "Medway LDIS", Now());
    ASSERT_TRUE(review.ok());
    EXPECT_EQ(review.value().decision, "review");
    EXPECT_EQ(review.value().deliveries, 0);
    const auto rows = store_->Federated(10);
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0].reference, "KM-2026-0008");
    const auto declined = store_->DecideFederated(rows[0].id, false, "a coordinator", Now());
    ASSERT_TRUE(declined.ok()) << declined.error().message;
    EXPECT_EQ(declined.value().decision, "declined");
    EXPECT_EQ(declined.value().decided_by, "a coordinator");
    const auto twice = store_->DecideFederated(rows[0].id, true, "another", Now());
    ASSERT_FALSE(twice.ok());
    EXPECT_NE(twice.error().message.find("waiting for a decision"), std::string::npos);
    EXPECT_TRUE(store_->VerifyAudit().ok());
}

namespace {

// Issue 17 §5 on both stores: only a coordinator makes an alert public, with an approval or
// an update (audited, routed as a new version); a public alert is found as published only
// once it was issued, never as a draft; a word that is not an audience, or an audience with
// a cancellation, is refused in words.
TEST_P(OutboxTest, ACoordinatorMakesAnAlertPublicAndOnlyIssuedPublicAlertsArePublished) {
    const auto red = SubmitRed();
    auto draft_report = ldis::test::ValidReport(ldis::test::NewUuid());
    draft_report["area"] = json::object{{"authority", "Kent"}, {"district", "Swale"}};
    draft_report["substances"] = json::array{{{"name", "spice"}}};
    auto parsed = ldis::test::ValidateShipped(draft_report);
    ASSERT_TRUE(parsed.ok());
    const auto draft = store_->Insert(*parsed.report, "mqtt");
    ASSERT_TRUE(draft.ok());
    ASSERT_EQ(store_->FindAlert(draft.value().alert_reference)->status, AlertStatus::kDraft);

    AlertFilter published;
    published.audience = "public";
    published.published = true;
    EXPECT_TRUE(store_->FindAlerts(published).alerts.empty());

    AlertWording nonsense;
    nonsense.audience = "everyone";
    const auto refused = store_->Act(red.alert_reference, AlertAction::kRevise, "coord", nonsense);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().message,
              "\"everyone\" is not an audience: choose professionals, services or public");
    AlertWording to_public;
    to_public.audience = "public";
    const auto with_cancel =
        store_->Act(red.alert_reference, AlertAction::kCancel, "coord", to_public);
    ASSERT_FALSE(with_cancel.ok());
    EXPECT_NE(with_cancel.error().message.find("changes with an approval or an update"),
              std::string::npos);
    EXPECT_EQ(store_->FindAlert(red.alert_reference)->status, AlertStatus::kIssued);

    const auto made = store_->Act(red.alert_reference, AlertAction::kRevise, "coord", to_public);
    ASSERT_TRUE(made.ok()) << made.error().message;
    EXPECT_EQ(made.value().audience, "public");
    EXPECT_EQ(made.value().version, 2);
    EXPECT_FALSE(Recipients(2).empty());  // the version was routed as any update is
    // A draft made public is still not published until it is issued.
    ASSERT_TRUE(
        store_->Act(draft.value().alert_reference, AlertAction::kRevise, "coord", to_public).ok());
    auto found = store_->FindAlerts(published).alerts;
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].reference, red.alert_reference);
    ASSERT_TRUE(store_->Act(draft.value().alert_reference, AlertAction::kApprove, "coord").ok());
    EXPECT_EQ(store_->FindAlerts(published).alerts.size(), 2u);

    const auto record = store_->FindAlertRecord(red.alert_reference);
    ASSERT_TRUE(record.has_value());
    bool audited = false;
    for (const auto& e : record->audit)
        if (e.action == "alert.updated" &&
            e.detail.find(R"("audience":{"from":"professionals","to":"public"})") !=
                std::string::npos)
            audited = e.actor == "coord";
    EXPECT_TRUE(audited);
    EXPECT_TRUE(store_->VerifyAudit().ok());
}

}  // namespace

namespace {

// Issue 17 §4 on both stores: a partner's answers are kept (the acknowledgement once, at the
// first time; a bare receipt never hides what it did), audited without the note's text, and
// read back with the delivery; a note too long is refused.
TEST_P(OutboxTest, APartnersAnswersAreKeptAuditedAndReadBack) {
    const auto red = SubmitRed();
    std::int64_t police = 0;
    for (const auto& d : store_->Deliveries(red.alert_reference))
        if (d.partner == "police" && d.kind == "alert") police = d.id;
    ASSERT_GT(police, 0);
    const auto first = store_->Acknowledge(police, "police@example.org", 1000);
    ASSERT_TRUE(first.ok()) << first.error().message;
    EXPECT_EQ(first.value().acknowledged_at_ms, 1000);
    EXPECT_EQ(first.value().answer, "received");
    const auto actions = store_->Acknowledge(police, "police@example.org", 2000,
                                             {Answer::kActions, "Briefed the custody suites."});
    ASSERT_TRUE(actions.ok());
    EXPECT_EQ(actions.value().acknowledged_at_ms, 1000);
    EXPECT_EQ(actions.value().answer, "actions");
    EXPECT_EQ(actions.value().answer_note, "Briefed the custody suites.");
    EXPECT_EQ(actions.value().answered_at_ms, 2000);
    const auto again = store_->Acknowledge(police, "police@example.org", 3000);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again.value().answer, "actions");
    EXPECT_EQ(again.value().answered_at_ms, 2000);
    const auto too_long =
        store_->Acknowledge(police, "police@example.org", 4000,
                            {Answer::kActions, std::string(kAnswerNoteMax + 1, 'x')});
    ASSERT_FALSE(too_long.ok());
    EXPECT_NE(too_long.error().message.find("longer than 500"), std::string::npos);
    EXPECT_FALSE(store_->Acknowledge(999999, "nobody", 5000, {Answer::kShared, ""}).ok());

    const auto record = store_->FindAlertRecord(red.alert_reference);
    ASSERT_TRUE(record.has_value());
    std::vector<std::string> said;
    for (const auto& e : record->audit) {
        if (e.subject != "delivery-" + std::to_string(police)) continue;
        said.push_back(e.action + " " + e.detail);
        EXPECT_EQ(e.detail.find("custody"), std::string::npos);  // the note's words: never
    }
    EXPECT_EQ(said, (std::vector<std::string>{
                        R"(delivery.acknowledged {"answer":"received","note":false})",
                        R"(delivery.answered {"answer":"actions","note":true})"}));
    // Past the retention period the note goes with the reports' free text; the answer stays.
    ASSERT_TRUE(store_->PurgeFreeText(2001, Now(), "retention").ok());
    const auto kept = store_->FindDelivery(police);
    ASSERT_TRUE(kept.has_value());
    EXPECT_EQ(kept->answer, "actions");
    EXPECT_EQ(kept->answer_note, "");
    EXPECT_TRUE(store_->VerifyAudit().ok());
}

}  // namespace

// Photos of a batch (issue 17 §3), on both stores: an upload is kept under a random id and
// named by the report that names it (and by no later one); the alert's record lists it; an
// automatic version carries none, a coordinator's choice puts it in the next version and
// in what its deliveries carry (CAP's size and digest among it); a photo of another alert
// is refused; retention takes a report's photos with its free text, and an upload no report
// named after a day.
// A coordinator's version is rendered again: before, it copied the last version's text, so a
// partner's v2 said "Share only this official version, KM-… v1" and its summary "v1". Its
// own number, status and history now, and what coordinators wrote still in it.
TEST_P(OutboxTest, ACoordinatorsVersionNamesItselfNotTheVersionBefore) {
    const auto red = SubmitRed();
    const std::string ref = red.alert_reference;
    AlertWording worded;
    worded.sections["advice"] = "Test a small amount first; carry naloxone.";
    ASSERT_TRUE(store_->Act(ref, AlertAction::kRevise, "coord", worded).ok());
    ASSERT_TRUE(store_->Act(ref, AlertAction::kRevise, "coord").ok());
    ASSERT_TRUE(store_->Act(ref, AlertAction::kCancel, "coord").ok());
    const auto record = store_->FindAlertRecord(ref);
    ASSERT_TRUE(record.has_value());
    ASSERT_EQ(record->versions.size(), 4u);
    for (const auto& v : record->versions) {
        SCOPED_TRACE("version " + std::to_string(v.version));
        const auto body = json::parse(v.body).as_object();
        const std::string sharing(body.at("sharing").as_string());
        const std::string summary(body.at("summary").as_string());
        std::string history(body.at("history").as_string());
        while (!history.empty() && std::isspace(static_cast<unsigned char>(history.back())))
            history.pop_back();
        const std::string mine = ref + " v" + std::to_string(v.version);
        EXPECT_NE(sharing.find(mine + "."), std::string::npos) << sharing;
        EXPECT_NE(summary.find(mine), std::string::npos) << summary;
        EXPECT_TRUE(history.ends_with("v" + std::to_string(v.version) + " " +
                                      std::string(ToString(v.status)) + " (red)"))
            << history;
        if (v.version >= 2) {
            EXPECT_EQ(std::string(body.at("advice").as_string()),
                      "Test a small amount first; carry naloxone.");
        }
    }
    EXPECT_NE(json::parse(record->versions.back().body)
                  .at("history")
                  .as_string()
                  .find("v1 issued (red); v2 updated (red); v3 updated (red); v4 cancelled (red)"),
              std::string::npos);
}

TEST_P(OutboxTest, APhotoIsNamedByItsReportAndGoesOutOnlyWithTheVersionACoordinatorChose) {
    const std::string jpeg = ldis::test::MakeJpeg(64, 48, "");
    const auto saved = store_->SavePhoto(jpeg, 64, 48, "clinician@example.org");
    ASSERT_TRUE(saved.ok()) << saved.error().message;
    const PhotoRow& photo = saved.value();
    EXPECT_TRUE(photo.id.starts_with("ph-"));
    EXPECT_EQ(photo.id.size(), 35u);
    EXPECT_EQ(photo.report_id, "");
    EXPECT_EQ(photo.bytes, static_cast<std::int64_t>(jpeg.size()));
    const auto stray = store_->SavePhoto(jpeg, 64, 48, "clinician@example.org");
    ASSERT_TRUE(stray.ok());
    EXPECT_NE(stray.value().id, photo.id);

    auto r = ldis::test::ValidReport(ldis::test::NewUuid());
    r["harms"].as_object()["deaths"] = 1;
    r["photos"] = json::array{json::value(photo.id)};
    auto v = ldis::test::ValidateShipped(r);
    ASSERT_TRUE(v.ok());
    ASSERT_EQ(v.report->photos, std::vector<std::string>{photo.id});
    const auto red = store_->Insert(*v.report, "http");
    ASSERT_TRUE(red.ok());
    const std::string ref = red.value().alert_reference;

    const auto found = store_->FindPhoto(photo.id, true);
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->first.report_id, v.report->id);
    EXPECT_EQ(found->first.sha256, photo.sha256);
    EXPECT_EQ(found->second, jpeg);  // byte for byte, whichever store keeps it
    EXPECT_EQ(store_->FindPhoto(photo.id, false)->second, "");
    EXPECT_FALSE(store_->FindPhoto("ph-00000000000000000000000000000000", true).has_value());
    const auto listed = store_->AlertPhotos(ref);
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].id, photo.id);

    // A second report naming the same photo does not take it.
    auto again = ldis::test::ValidReport(ldis::test::NewUuid());
    again["photos"] = json::array{json::value(photo.id)};
    auto v2 = ldis::test::ValidateShipped(again);
    ASSERT_TRUE(v2.ok());
    ASSERT_TRUE(store_->Insert(*v2.report, "http").ok());
    EXPECT_EQ(store_->FindPhoto(photo.id, false)->first.report_id, v.report->id);

    // The automatic version carries none, nor do its deliveries.
    auto record = store_->FindAlertRecord(ref);
    ASSERT_TRUE(record.has_value());
    for (const auto& version : record->versions) EXPECT_EQ(version.photos, "") << version.version;
    for (const auto& item : Claim()) EXPECT_EQ(item.photos, "") << item.kind;

    // A photo of no report of this alert is refused, and nothing is written.
    AlertWording other;
    other.photos = std::vector<std::string>{stray.value().id};
    const auto refused = store_->Act(ref, AlertAction::kRevise, "coord", other);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().message, "the photo " + stray.value().id +
                                           " is not from a report of " + ref +
                                           ": choose from the photos its record shows");
    EXPECT_EQ(store_->FindAlertRecord(ref)->versions.size(), record->versions.size());

    // The coordinator's choice: the next version and each of its deliveries carry it.
    AlertWording chosen;
    chosen.photos = std::vector<std::string>{photo.id};
    const auto updated = store_->Act(ref, AlertAction::kRevise, "coord", chosen);
    ASSERT_TRUE(updated.ok()) << updated.error().message;
    record = store_->FindAlertRecord(ref);
    const auto& latest = record->versions.back();
    const auto carried = VersionPhotos(latest.photos);
    ASSERT_EQ(carried.size(), 1u);
    EXPECT_EQ(carried[0].id, photo.id);
    EXPECT_EQ(carried[0].sha1, photo.sha1);
    EXPECT_EQ(carried[0].bytes, photo.bytes);
    EXPECT_EQ(carried[0].width, 64);
    bool any = false;
    for (const auto& item : Claim()) {
        if (item.kind != "alert" || item.version != latest.version) continue;
        any = true;
        EXPECT_EQ(item.photos, latest.photos);
    }
    EXPECT_TRUE(any);
    const auto audited = std::find_if(record->audit.rbegin(), record->audit.rend(),
                                      [](const auto& e) { return e.action == "alert.updated"; });
    ASSERT_NE(audited, record->audit.rend());
    EXPECT_NE(audited->detail.find(photo.id), std::string::npos);

    // Retention: nothing is old enough yet but the upload no report named, after a day.
    const std::int64_t now = Now();
    ASSERT_TRUE(store_->PurgeFreeText(0, now, "test").ok());
    EXPECT_TRUE(store_->FindPhoto(stray.value().id, false).has_value());
    ASSERT_TRUE(store_->PurgeFreeText(0, now + 25LL * 3600 * 1000, "test").ok());
    EXPECT_FALSE(store_->FindPhoto(stray.value().id, false).has_value());
    EXPECT_TRUE(store_->FindPhoto(photo.id, false).has_value());
    ASSERT_TRUE(store_->PurgeFreeText(now + 1000, now + 1000, "test").ok());
    EXPECT_FALSE(store_->FindPhoto(photo.id, false).has_value());
    EXPECT_TRUE(store_->AlertPhotos(ref).empty());
    EXPECT_TRUE(store_->VerifyAudit().ok());
}

}  // namespace ldis::test::outbox
