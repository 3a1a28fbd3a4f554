// Where the tool reads and writes, and small file-system helpers.
#pragma once

#include <string>

namespace pl {

// The output root: `flag` when not empty, else $PIPELINE_HOME, else "runs".
std::string resolve_root(const std::string& flag);

// The CIFAR-10 folder used when an experiment names none: $PIPELINE_CIFAR10,
// else "data/cifar-10-batches-bin".
std::string default_cifar_dir();

// Creates `dir` and its parents. Throws std::runtime_error with the path and
// the system's reason (read-only file system, permission) when it cannot.
void make_dirs(const std::string& dir);

// Throws std::runtime_error naming `dir` when a file cannot be created in it.
void check_writable(const std::string& dir);

// Writes `text` to `path` through a temporary file and a rename, so a reader
// never sees half a file. Throws on any I/O error (a full disk included).
void write_file_atomic(const std::string& path, const std::string& text);

std::string read_file(const std::string& path);

// A temporary name beside `path`, unique to this process and call, so two
// processes writing the same file never share a temporary file.
std::string temporary_path(const std::string& path);

// fsync of a file or folder; errors are ignored (best effort durability).
void sync_path(const std::string& path);

}  // namespace pl
