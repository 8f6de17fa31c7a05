//! ward-resolver: parse the command line, start logging, hand over to the library.
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ward_resolver::cli::Cli::parse();
    ward_service::logging::init(cli.log_format);
    ward_service::exit_code("ward-resolver", ward_resolver::main(cli))
}
