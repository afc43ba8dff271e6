fn main() {
    std::process::exit(courier_run::cli::main());
}
