//! The `synod` command-line tool; see `synod --help`.

fn main() {
    std::process::exit(synod_harness::cli::main());
}
