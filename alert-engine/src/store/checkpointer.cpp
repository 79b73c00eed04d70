// The WAL's checkpoints, on a thread and connection of their own.
#include <pthread.h>

#include <spdlog/spdlog.h>

#include "impl.hpp"

namespace ldis::engine {

Checkpointer::Checkpointer(const std::string& path, Synchronous synchronous, int busy_timeout_ms)
    : db_(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, busy_timeout_ms) {
    db_.ExecOrThrow(SynchronousPragma(synchronous));
    thread_ = std::thread([this] { Run(); });
    pthread_setname_np(thread_.native_handle(), "ldis-checkpoint");
}

Checkpointer::~Checkpointer() {
    {
        std::lock_guard lock(mutex_);
        closing_ = true;
    }
    wake_.notify_one();
    thread_.join();
}

int Checkpointer::OnWal(void* self, sqlite3* db, const char*, int pages) {
    if (pages >= kPages) static_cast<Checkpointer*>(self)->Due();
    // A PASSIVE checkpoint beside a writer that never pauses copies all but the newest
    // frames, and the WAL only starts again from its beginning once one has copied them all:
    // under a sustained burst it would grow without end. Past four times the threshold the
    // writer checkpoints itself, as SQLite's own automatic checkpoint would have.
    if (pages >= kWriterPages)
        sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    return SQLITE_OK;
}

void Checkpointer::Due() {
    {
        std::lock_guard lock(mutex_);
        due_ = true;
    }
    wake_.notify_one();
}

void Checkpointer::Run() {
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return closing_ || due_; });
            if (closing_) return;
            due_ = false;
        }
        // PASSIVE: copies what no reader still needs and never waits for the writer or a
        // reader; what is left is copied at the next one.
        int log = 0, copied = 0;
        const int rc =
            sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
        if (rc != SQLITE_OK && (rc & 0xFF) != SQLITE_BUSY)
            spdlog::warn("store: checkpoint of {}: {}", db_.path(), db_.Describe(rc));
    }
}

}  // namespace ldis::engine
