//! ward-agent: parse the command line, start logging, hand over to the library.
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ward_agent::cli::Cli::parse();
    ward_service::logging::init(cli.log_format);
    ward_service::exit_code("ward-agent", ward_agent::main(cli))
}
