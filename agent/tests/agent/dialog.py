#!/usr/bin/python3
"""A one-field GTK 3 dialog for the password-field test.

    dialog.py --title TITLE [--password]

Shows TITLE with one text entry (hidden characters with --password, which GTK publishes on the
accessibility bus with the role "password text"); Return closes it with status 0.
"""
import argparse

import gi

gi.require_version("Gtk", "3.0")
from gi.repository import Gtk  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--title", required=True)
    parser.add_argument("--password", action="store_true")
    args = parser.parse_args()

    window = Gtk.Window(title=args.title)
    window.set_default_size(360, 80)
    entry = Gtk.Entry()
    entry.set_visibility(not args.password)
    entry.connect("activate", lambda _entry: Gtk.main_quit())
    window.add(entry)
    window.connect("destroy", Gtk.main_quit)
    window.show_all()
    entry.grab_focus()
    Gtk.main()


if __name__ == "__main__":
    main()
