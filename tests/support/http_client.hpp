#pragma once

#include <map>
#include <string>
#include <vector>

namespace ldis::test {

// One HTTP exchange as a test client saw it.
struct HttpResponse {
    long status = 0;  // 0 when no response came
    std::string body;
    std::map<std::string, std::string> headers;  // names in lower case
    std::string error;                           // curl's, when status is 0
};

// A blocking HTTP request with libcurl (the test's own client, not ldisd's code).
HttpResponse HttpRequest(const std::string& method, const std::string& url,
                         const std::string& body = {},
                         const std::vector<std::string>& headers = {});

}  // namespace ldis::test
