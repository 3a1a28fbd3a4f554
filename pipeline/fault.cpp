#include "pipeline/fault.h"

#include <csignal>
#include <cstdlib>
#include <string>

namespace pl {
namespace {

struct Fault {
  std::string point;
  long remaining = 0;
};

Fault* configured() {
  static Fault* fault = []() -> Fault* {
    const char* text = std::getenv("PIPELINE_FAULT");
    if (text == nullptr || *text == '\0') return nullptr;
    auto* f = new Fault;
    std::string spec = text;
    std::size_t colon = spec.find(':');
    f->point = spec.substr(0, colon);
    f->remaining = colon == std::string::npos ? 1 : std::atol(spec.c_str() + colon + 1);
    return f;
  }();
  return fault;
}

}  // namespace

void fault_point(const char* point) {
  Fault* fault = configured();
  if (fault == nullptr || fault->point != point) return;
  if (--fault->remaining <= 0) std::raise(SIGKILL);
}

}  // namespace pl
