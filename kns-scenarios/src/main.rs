//! The `kns` command-line tool. All logic lives in [`kns_scenarios::cli`]; this only exits.

fn main() {
    std::process::exit(kns_scenarios::cli::main());
}
