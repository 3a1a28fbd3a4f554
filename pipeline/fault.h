// Fault injection for the crash tests: PIPELINE_FAULT="point:n" makes the
// process kill itself with SIGKILL the n-th time it reaches `point` (n
// defaults to 1). Unset, each call is one comparison of a cached flag.
//
// Points: train-batch, checkpoint-write (half-way through a checkpoint),
// checkpoint-swap (old checkpoint moved aside, new one not yet written),
// epoch-end, evaluate, modify, report.
#pragma once

namespace pl {

void fault_point(const char* point);

}  // namespace pl
