//! ward-collector: parse the command line, start logging, hand over to the library.
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ward_collector::cli::Cli::parse();
    ward_service::logging::init(cli.log_format);
    ward_service::exit_code("ward-collector", ward_collector::main(cli))
}
