"""A real SSH server on 127.0.0.1 (asyncssh) that runs each command in a local shell, so the smoke suite's
`ssh://` backend (testinfra -> the OpenSSH client) is exercised for real in CI without a VM.

Keys are generated per server: an Ed25519 host key (pinned in a known_hosts file, strict checking on) and a
client key (the only one authorized). `ssh_config` is a client config that uses exactly those.
"""
from __future__ import annotations

import asyncio
import getpass
import os
import threading
from pathlib import Path

import asyncssh


class LoopbackSsh:
    def __init__(self, directory: Path):
        self.directory = directory
        self.commands: list[str] = []  # every command run, in order (proof the backend went through SSH)
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.key_file = directory / "id_ed25519"
        client_key.write_private_key(str(self.key_file))
        os.chmod(self.key_file, 0o600)
        self.authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
        self.user = getpass.getuser()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="loopback-ssh", daemon=True)
        self._server = None

    def __enter__(self) -> LoopbackSsh:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        self.port = self._server.sockets[0].getsockname()[1]
        self._write_client_config()
        return self

    def __exit__(self, *exc) -> None:
        async def stop():
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    @property
    def ssh_config(self) -> Path:
        return self.directory / "ssh_config"

    @property
    def uri(self) -> str:
        """The testinfra host spec that reaches this server."""
        return f"ssh://{self.user}@127.0.0.1:{self.port}?ssh_config={self.ssh_config}"

    async def _start(self):
        return await asyncssh.create_server(
            asyncssh.SSHServer, "127.0.0.1", 0, server_host_keys=[self.host_key],
            authorized_client_keys=self.authorized, process_factory=self._run, encoding=None,
            password_auth=False, kbdint_auth=False)

    async def _run(self, process: asyncssh.SSHServerProcess) -> None:
        """Run the session's command with /bin/sh, return its output and exit status (no interactive shells)."""
        command = process.command
        if not command:
            process.stderr.write(b"interactive sessions are not served\n")
            process.exit(1)
            return
        self.commands.append(command)
        child = await asyncio.create_subprocess_shell(command, stdin=asyncio.subprocess.DEVNULL,
                                                      stdout=asyncio.subprocess.PIPE,
                                                      stderr=asyncio.subprocess.PIPE)
        out, err = await child.communicate()
        process.stdout.write(out)
        process.stderr.write(err)
        process.exit(child.returncode)

    def _write_client_config(self) -> None:
        known = self.directory / "known_hosts"
        known.write_text(f"[127.0.0.1]:{self.port} {self.host_key.export_public_key().decode().strip()}\n")
        self.ssh_config.write_text(
            "Host 127.0.0.1\n"
            f"  IdentityFile {self.key_file}\n"
            "  IdentitiesOnly yes\n"
            "  BatchMode yes\n"
            "  StrictHostKeyChecking yes\n"
            f"  UserKnownHostsFile {known}\n"
            "  GlobalKnownHostsFile /dev/null\n"
            "  LogLevel ERROR\n")
