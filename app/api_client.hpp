#pragma once

#include <string>

namespace ldis::app {

// What ldisctl got from the LDIS HTTP API.
struct ApiResponse {
    long status = 0;  // 0: no answer
    std::string body;
    std::string error;  // why there was no answer
};

// One blocking request to the API with a bearer token (libcurl). Thread-compatible.
ApiResponse CallApi(const std::string& method, const std::string& url, const std::string& token,
                    const std::string& body = {});

// The process exit code for an HTTP status (documented in `ldisctl --help`):
// 0 success; 2 the request was refused as invalid (400, 413, 422); 4 not found;
// 5 refused by the alert's state (409); 6 no answer or a server error; 7 not signed in or
// not allowed (401, 403).
int ExitCodeFor(const ApiResponse& response);

}  // namespace ldis::app
