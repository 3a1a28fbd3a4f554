// Fuzzes the experiment loader: any text must give an experiment or a
// ConfigError, never a crash, a leak or another exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "pipeline/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    pl::Experiment experiment = pl::load_experiment_text(text, "fuzz.yaml");
    for (const pl::RunConfig& run : experiment.runs) {
      if (run.id().size() != 12) __builtin_trap();
      (void)run.architecture();
    }
  } catch (const pl::ConfigError& e) {
    if (e.diagnostics().empty()) __builtin_trap();  // an error must say what is wrong
  }
  return 0;
}
