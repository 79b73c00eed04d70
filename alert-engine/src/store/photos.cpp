// Photos of a batch (issue 17 §3): cleaned JPEGs kept in the database, named by reports.
#include "impl.hpp"
#include "ldis/engine/codec.hpp"
#include "sql/photos_sql.hpp"

namespace ldis::engine {

namespace {

using photos_sql::kColumns;
using photos_sql::kOfAlerts;

PhotoRow PhotoOf(sqlite3_stmt* stmt) {
    return {
        ColumnText(stmt, 0),         ColumnText(stmt, 1),           ColumnText(stmt, 2),
        ColumnText(stmt, 3),         ColumnText(stmt, 4),           sqlite3_column_int(stmt, 5),
        sqlite3_column_int(stmt, 6), sqlite3_column_int64(stmt, 7), sqlite3_column_int64(stmt, 8)};
}

}  // namespace

Result<PhotoRow> ReportStore::Impl::SavePhoto(const std::string& jpeg, int width, int height,
                                              const std::string& uploaded_by) {
    return OnWriter<PhotoRow>([&]() -> Result<PhotoRow> {
        PhotoRow row{"ph-" + Hex(RandomBytes(16)),
                     "",
                     uploaded_by,
                     Sha256Hex(jpeg),
                     Sha1Hex(jpeg),
                     width,
                     height,
                     static_cast<std::int64_t>(jpeg.size()),
                     NowMs()};
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        sqlite3_stmt* stmt = writer_.Cached(
            "INSERT INTO photos (id, uploaded_by, sha256, sha1, width, height, bytes, "
            "created_at_ms, jpeg) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
        {
            StatementUse use(stmt);
            BindText(stmt, 1, row.id);
            BindText(stmt, 2, row.uploaded_by);
            BindText(stmt, 3, row.sha256);
            BindText(stmt, 4, row.sha1);
            sqlite3_bind_int(stmt, 5, width);
            sqlite3_bind_int(stmt, 6, height);
            sqlite3_bind_int64(stmt, 7, row.bytes);
            sqlite3_bind_int64(stmt, 8, row.created_at_ms);
            sqlite3_bind_blob64(stmt, 9, jpeg.data(), jpeg.size(), SQLITE_STATIC);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE)
                return Error{options_.path + ": " + writer_.Describe(rc)};
        }
        audit_.push_back({row.created_at_ms, uploaded_by, "photo.uploaded", row.id,
                          boost::json::serialize(
                              boost::json::object{{"sha256", row.sha256}, {"bytes", row.bytes}})});
        if (auto failed = Finish(tx, SQLITE_OK)) return *failed;
        return row;
    });
}

// The photos a report names become its own, if no other report took them first.
int ReportStore::Impl::LinkPhotos(const Report& report) {
    for (const auto& id : report.photos) {
        sqlite3_stmt* stmt =
            writer_.Cached("UPDATE photos SET report_id = ?2 WHERE id = ?1 AND report_id IS NULL");
        StatementUse use(stmt);
        BindText(stmt, 1, id);
        BindText(stmt, 2, report.id);
        if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
    }
    return SQLITE_OK;
}

// The rows of the photos a coordinator chose for a version of `alert_id`, each of its
// signal's reports, in the order chosen; on the writer.
Result<std::string> ReportStore::Impl::ChosenPhotos(std::int64_t alert_id,
                                                    const std::string& reference,
                                                    const std::vector<std::string>& ids) {
    std::vector<PhotoRow> chosen;
    for (const auto& id : ids) {
        static const std::string sql =
            std::string("SELECT ") + kColumns + kOfAlerts + "WHERE a.id = ?1 AND p.id = ?2";
        sqlite3_stmt* stmt = writer_.Cached(sql.c_str());
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, alert_id);
        BindText(stmt, 2, id);
        if (sqlite3_step(stmt) != SQLITE_ROW) return photos_sql::NotOfTheAlert(id, reference);
        chosen.push_back(PhotoOf(stmt));
    }
    return photos_sql::VersionPhotos(chosen);
}

std::optional<std::pair<PhotoRow, std::string>> ReportStore::Impl::FindPhoto(std::string_view id,
                                                                             bool with_jpeg) const {
    std::lock_guard lock(reader_mutex_);
    sqlite3_stmt* stmt = nullptr;
    const std::string sql = std::string("SELECT ") + kColumns +
                            (with_jpeg ? ", p.jpeg" : ", NULL") + " FROM photos p WHERE p.id = ?1";
    sqlite3_prepare_v2(reader_->get(), sql.c_str(), -1, &stmt, nullptr);
    BindText(stmt, 1, id);
    std::optional<std::pair<PhotoRow, std::string>> out;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        std::string jpeg;
        if (with_jpeg) {
            const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt, 9));
            jpeg.assign(data ? data : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt, 9)));
        }
        out.emplace(PhotoOf(stmt), std::move(jpeg));
    }
    sqlite3_finalize(stmt);
    return out;
}

std::vector<PhotoRow> ReportStore::Impl::AlertPhotos(std::string_view reference) const {
    std::lock_guard lock(reader_mutex_);
    sqlite3_stmt* stmt = nullptr;
    const std::string sql = std::string("SELECT ") + kColumns + kOfAlerts +
                            "WHERE a.reference = ?1 ORDER BY p.created_at_ms, p.id";
    sqlite3_prepare_v2(reader_->get(), sql.c_str(), -1, &stmt, nullptr);
    BindText(stmt, 1, reference);
    std::vector<PhotoRow> out;
    while (sqlite3_step(stmt) == SQLITE_ROW) out.push_back(PhotoOf(stmt));
    sqlite3_finalize(stmt);
    return out;
}

}  // namespace ldis::engine
