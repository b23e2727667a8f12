#!/usr/bin/env python3
"""amiforge local stack: moto + router + `cargo lambda watch`, all on 127.0.0.1.

    stack.py up [--no-lambda] [--no-reload]   start what is not running, provision, print env
    stack.py deploy                           (re)deploy statemachine/*.asl.json only
    stack.py env                              print the export lines of the running stack
    stack.py status                           what runs where
    stack.py down                             stop the processes recorded in .stack/

State lives in <repo>/.stack/: ports.json, <component>.pid, <component>.log, env,
lambda.env. Normally called through dev/stack, which prepares the virtualenv.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STACK = ROOT / ".stack"
VENV = ROOT / ".venv"
PORTS_FILE = STACK / "ports.json"
ENV_FILE = STACK / "env"
LAMBDA_ENV_FILE = STACK / "lambda.env"
HOST = "127.0.0.1"

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
TABLE = "amiforge-local-jobs"
BUCKET = "amiforge-local-manifests"
PREFIX = "images"
DEMO_NAME = "amiforge-demo"
SFN_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/amiforge-local-states"
# The role schedule rules name for starting builds (moto stores it; nothing assumes it).
SCHEDULE_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/amiforge-local-schedules"
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
DEFAULT_TARGET_DIR = "/var/tmp/amiforge-target"

# Seconds to wait for a process to answer after it was started.
START_TIMEOUT = {"moto": 60, "router": 30, "lambda": 180}

# Order matters: started in this order, stopped in reverse.
COMPONENTS = ("moto", "router", "lambda")
# A fragment of each component's command line, checked before a recorded pid is
# trusted (a pid can be reused by an unrelated process after a reboot).
CMD_MARKER = {"moto": "moto_server", "router": "router.py", "lambda": "cargo-lambda"}


def state_machine_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


BUILD_SM = "build-image"
PURGE_SM = "purge-images"

# `${Name}` substitutions for statemachine/*.asl.json besides `${XxxFunctionArn}`.
SUBSTITUTIONS = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AccountId": ACCOUNT,
    "Region": REGION,
    "Partition": "aws",
    "JobsTable": TABLE,
    "JobsTableName": TABLE,
    "Bucket": BUCKET,
    "BucketName": BUCKET,
    "ManifestBucket": BUCKET,
    "ManifestBucketName": BUCKET,
    "Prefix": PREFIX,
    "ManifestPrefix": PREFIX,
    "BuildStateMachineArn": state_machine_arn(BUILD_SM),
    "PurgeStateMachineArn": state_machine_arn(PURGE_SM),
}


class StackError(Exception):
    pass


# ---------------------------------------------------------------------------------------
# processes and ports


def pid_file(name: str) -> Path:
    return STACK / f"{name}.pid"


def log_file(name: str) -> Path:
    return STACK / f"{name}.log"


def read_pid(name: str) -> int | None:
    try:
        return int(pid_file(name).read_text().strip())
    except (OSError, ValueError):
        return None


def proc_alive(pid: int, marker: str | None = None) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        return False
    return marker is None or marker in cmdline


def component_pid(name: str) -> int | None:
    """The recorded pid of a component, if that process is still the component."""
    pid = read_pid(name)
    if pid is not None and proc_alive(pid, CMD_MARKER[name]):
        return pid
    return None


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session id) for every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields after the command: state ppid pgrp session ...
        table[int(entry.name)] = (int(fields[1]), int(fields[3]))
    return table


def family(leader: int) -> set[int]:
    """The processes a component started: its session (every component is started as a
    session leader) plus all descendants, which also covers children that moved to a
    session of their own (cargo-lambda runs each function that way)."""
    table = process_table()
    found = {pid for pid, (_, sid) in table.items() if sid == leader}
    found.add(leader)
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _) in table.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def signal_all(pids: set[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    alive = {p for p in pids if proc_alive(p)}
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = {p for p in alive if proc_alive(p)}
    return alive


def stop_component(name: str) -> bool:
    pid = component_pid(name)
    if pid is None:
        pid_file(name).unlink(missing_ok=True)
        return False
    members = family(pid)
    # the leader first, so it can shut its children down cleanly
    signal_all({pid}, signal.SIGTERM)
    alive = wait_gone(members, 10.0)
    if alive:
        signal_all(alive, signal.SIGTERM)
        alive = wait_gone(alive, 5.0)
    if alive:
        signal_all(alive, signal.SIGKILL)
        alive = wait_gone(alive, 5.0)
    if alive:
        print(f"{name}: processes {sorted(alive)} did not stop", file=sys.stderr)
    pid_file(name).unlink(missing_ok=True)
    return True


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # like the servers themselves: connections in TIME_WAIT do not block the port
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def pick_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def http_json(method: str, url: str, body: dict | None = None, timeout: float = 5.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def moto_answers(port: int) -> bool:
    try:
        http_json("GET", f"http://{HOST}:{port}/moto-api/config", timeout=3)
        return True
    except (OSError, ValueError):
        return False


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_process(name: str, argv: list[str], env: dict[str, str], cwd: Path) -> int:
    with open(log_file(name), "ab") as log:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        log.write(f"\n--- {stamp} starting: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file(name).write_text(f"{proc.pid}\n")
    return proc.pid


def wait_ready(name: str, pid: int, ready) -> None:
    deadline = time.monotonic() + START_TIMEOUT[name]
    while time.monotonic() < deadline:
        if ready():
            return
        if not proc_alive(pid):
            pid_file(name).unlink(missing_ok=True)
            raise StackError(
                f"{name} exited during start-up; log: {log_file(name)}\n{tail(log_file(name))}"
            )
        time.sleep(0.2)
    raise StackError(
        f"{name} did not answer within {START_TIMEOUT[name]}s; log: {log_file(name)}\n"
        f"{tail(log_file(name))}"
    )


# ---------------------------------------------------------------------------------------
# environment


def load_ports() -> dict | None:
    try:
        return json.loads(PORTS_FILE.read_text())
    except (OSError, ValueError):
        return None


def stack_env(ports: dict, demo_instance_id: str) -> dict[str, str]:
    router = f"http://{HOST}:{ports['router']}"
    return {
        "AWS_ENDPOINT_URL": router,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AMIFORGE_JOBS_TABLE": TABLE,
        "AMIFORGE_BUCKET": BUCKET,
        "AMIFORGE_PREFIX": PREFIX,
        "AMIFORGE_BUILD_STATE_MACHINE_ARN": state_machine_arn(BUILD_SM),
        "AMIFORGE_PURGE_STATE_MACHINE_ARN": state_machine_arn(PURGE_SM),
        "AMIFORGE_SCHEDULE_ROLE_ARN": SCHEDULE_ROLE_ARN,
        "AMIFORGE_DEMO_INSTANCE_ID": demo_instance_id,
        "AMIFORGE_LAMBDA_URL": f"http://{HOST}:{ports['lambda']}",
        # The api function behind cargo lambda's function URL: the CLI's endpoint.
        "AMIFORGE_ENDPOINT": f"http://{HOST}:{ports['lambda']}/lambda-url/api",
        "AMIFORGE_POLL_MIN_SECONDS": "1",
        "AMIFORGE_POLL_MAX_SECONDS": "5",
        "MOTO_PORT": str(ports["router"]),
    }


def write_env_files(env: dict[str, str]) -> None:
    ENV_FILE.write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
    LAMBDA_ENV_FILE.write_text("".join(f"{k}={v}\n" for k, v in env.items()))


def read_env_file() -> dict[str, str]:
    env = {}
    for line in ENV_FILE.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            k, v = line[len("export ") :].split("=", 1)
            env[k] = v
    return env


def lambda_process_env(env: dict[str, str]) -> dict[str, str]:
    out = dict(os.environ)
    out.update(env)
    out["CARGO_TARGET_DIR"] = os.environ.get("CARGO_TARGET_DIR") or DEFAULT_TARGET_DIR
    out["PATH"] = f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    return out


# ---------------------------------------------------------------------------------------
# AWS resources


def aws_client(service: str, ports: dict):
    import boto3  # the virtualenv's; imported late so down/status work without it

    return boto3.client(
        service,
        endpoint_url=f"http://{HOST}:{ports['router']}",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def ensure_table(ports: dict) -> None:
    ddb = aws_client("dynamodb", ports)
    spec = json.loads((ROOT / "dev" / "jobs-table.json").read_text())
    try:
        ddb.describe_table(TableName=TABLE)
        return
    except ddb.exceptions.ResourceNotFoundException:
        pass
    ddb.create_table(TableName=TABLE, **spec)
    print(f"created DynamoDB table {TABLE}", file=sys.stderr)


def ensure_bucket(ports: dict) -> None:
    s3 = aws_client("s3", ports)
    try:
        s3.head_bucket(Bucket=BUCKET)
        return
    except Exception:  # noqa: BLE001 (botocore raises a generic ClientError on 404)
        pass
    s3.create_bucket(Bucket=BUCKET)  # us-east-1: no LocationConstraint
    print(f"created S3 bucket {BUCKET}", file=sys.stderr)


def pick_demo_ami(ec2) -> str:
    base = [
        {"Name": "architecture", "Values": ["x86_64"]},
        {"Name": "root-device-type", "Values": ["ebs"]},
        {"Name": "virtualization-type", "Values": ["hvm"]},
        {"Name": "state", "Values": ["available"]},
    ]
    for extra in ([{"Name": "name", "Values": ["amzn-ami-hvm-*"]}], []):
        images = ec2.describe_images(Owners=["amazon"], Filters=base + extra)["Images"]
        images = [i for i in images if i.get("Platform") != "windows"]
        if images:
            return sorted(images, key=lambda i: (i.get("Name", ""), i["ImageId"]))[0]["ImageId"]
    raise StackError("moto offers no x86_64 EBS-backed HVM image to launch the demo instance from")


def ensure_demo_instance(ports: dict) -> str:
    ec2 = aws_client("ec2", ports)
    found = ec2.describe_instances(
        Filters=[
            {"Name": "tag:Name", "Values": [DEMO_NAME]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
    )
    for reservation in found["Reservations"]:
        for instance in reservation["Instances"]:
            return instance["InstanceId"]
    ami = pick_demo_ami(ec2)
    root_device = ec2.describe_images(ImageIds=[ami])["Images"][0].get("RootDeviceName")
    # moto creates no root volume once BlockDeviceMappings is given: list it too.
    resp = ec2.run_instances(
        ImageId=ami,
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        BlockDeviceMappings=[
            {
                "DeviceName": root_device or "/dev/xvda",
                "Ebs": {"VolumeSize": 8, "VolumeType": "gp3", "DeleteOnTermination": True},
            },
            {
                "DeviceName": "/dev/sdf",
                "Ebs": {"VolumeSize": 8, "VolumeType": "gp3", "DeleteOnTermination": True},
            },
        ],
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": DEMO_NAME}]},
            {"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": DEMO_NAME}]},
        ],
    )
    instance_id = resp["Instances"][0]["InstanceId"]
    print(f"launched demo instance {instance_id} from {ami}", file=sys.stderr)
    return instance_id


def kebab(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()


PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_:]+)\}")


def substitute(text: str, source: Path) -> str:
    unknown = set()

    def repl(m: re.Match) -> str:
        key = m.group(1)
        fn = re.fullmatch(r"([A-Za-z0-9]+)FunctionArn", key)
        if fn:
            return function_arn(kebab(fn.group(1)))
        if key in SUBSTITUTIONS:
            return SUBSTITUTIONS[key]
        unknown.add(key)
        return m.group(0)

    out = PLACEHOLDER.sub(repl, text)
    if unknown:
        raise StackError(
            f"{source}: no local value for {', '.join('${' + k + '}' for k in sorted(unknown))} "
            f"(add it to SUBSTITUTIONS in dev/stack.py)"
        )
    return out


def deploy_state_machines(ports: dict) -> list[str]:
    sm_dir = ROOT / "statemachine"
    files = sorted(sm_dir.glob("*.asl.json")) if sm_dir.is_dir() else []
    if not files:
        print("no statemachine/*.asl.json yet: no state machine deployed", file=sys.stderr)
        return []
    sfn = aws_client("stepfunctions", ports)
    deployed = []
    for path in files:
        name = path.name[: -len(".asl.json")]
        definition = substitute(path.read_text(), path)
        try:
            json.loads(definition)
        except ValueError as err:
            raise StackError(f"{path}: not valid JSON after substitution: {err}") from err
        arn = state_machine_arn(name)
        try:
            sfn.describe_state_machine(stateMachineArn=arn)
            sfn.update_state_machine(stateMachineArn=arn, definition=definition)
            print(f"updated state machine {name}", file=sys.stderr)
        except sfn.exceptions.StateMachineDoesNotExist:
            sfn.create_state_machine(name=name, definition=definition, roleArn=SFN_ROLE_ARN)
            print(f"created state machine {name}", file=sys.stderr)
        deployed.append(arn)
    return deployed


def configure_moto(ports: dict) -> None:
    http_json("POST", f"http://{HOST}:{ports['moto']}/moto-api/config", MOTO_CONFIG)


def provision(ports: dict) -> dict[str, str]:
    configure_moto(ports)
    ensure_table(ports)
    ensure_bucket(ports)
    instance_id = ensure_demo_instance(ports)
    deploy_state_machines(ports)
    return stack_env(ports, instance_id)


# ---------------------------------------------------------------------------------------
# commands


def cmd_up(args: argparse.Namespace) -> int:
    STACK.mkdir(exist_ok=True)
    running = {name: component_pid(name) for name in COMPONENTS}
    ports = load_ports()
    if not any(running.values()) or ports is None:
        if any(running.values()):
            raise StackError(f"processes run but {PORTS_FILE} is unreadable: run dev/stack down")
        router, moto, lam = pick_ports(3)
        ports = {"router": router, "moto": moto, "lambda": lam}
        PORTS_FILE.write_text(json.dumps(ports, indent=2) + "\n")
    for name in COMPONENTS:
        wanted = running[name] is None and not (name == "lambda" and args.no_lambda)
        if wanted and not port_free(ports[name]):
            raise StackError(
                f"port {ports[name]} for {name} is taken by another process: "
                f"run dev/stack down, then dev/stack up"
            )

    if running["moto"] is None:
        moto_bin = VENV / "bin" / "moto_server"
        if not moto_bin.exists():
            raise StackError(f"{moto_bin} missing: start the stack with dev/stack up")
        env = dict(os.environ, MOTO_PORT=str(ports["router"]))
        pid = start_process(
            "moto", [str(moto_bin), "-H", HOST, "-p", str(ports["moto"])], env, ROOT
        )
        wait_ready("moto", pid, lambda: moto_answers(ports["moto"]))
        print(f"moto on {HOST}:{ports['moto']} (pid {pid})", file=sys.stderr)

    if running["router"] is None:
        argv = [
            sys.executable,
            str(ROOT / "dev" / "router.py"),
            "--host",
            HOST,
            "--port",
            str(ports["router"]),
            "--moto-url",
            f"http://{HOST}:{ports['moto']}",
            "--lambda-url",
            f"http://{HOST}:{ports['lambda']}",
        ]
        pid = start_process("router", argv, dict(os.environ), ROOT)
        wait_ready("router", pid, lambda: moto_answers(ports["router"]))
        print(f"router on {HOST}:{ports['router']} (pid {pid})", file=sys.stderr)

    env = provision(ports)
    write_env_files(env)

    if args.no_lambda:
        if running["lambda"] is not None:
            print("cargo lambda watch is already running; left as it is", file=sys.stderr)
    elif running["lambda"] is None:
        cargo_lambda = VENV / "bin" / "cargo-lambda"
        if not cargo_lambda.exists():
            raise StackError(f"{cargo_lambda} missing: start the stack with dev/stack up")
        if shutil.which("cargo") is None:
            raise StackError("cargo is not on PATH; cargo lambda watch needs it")
        argv = [
            str(cargo_lambda),
            "lambda",
            "watch",
            "--invoke-address",
            HOST,
            "--invoke-port",
            str(ports["lambda"]),
            "--env-file",
            str(LAMBDA_ENV_FILE),
            # never compile at start-up (a workspace with a single function would)
            "--wait",
        ]
        if args.no_reload:
            argv.append("--ignore-changes")
        pid = start_process("lambda", argv, lambda_process_env(env), ROOT)
        wait_ready("lambda", pid, lambda: port_open(ports["lambda"]))
        print(f"cargo lambda watch on {HOST}:{ports['lambda']} (pid {pid})", file=sys.stderr)

    sys.stdout.write(ENV_FILE.read_text())
    return 0


def cmd_deploy(_args: argparse.Namespace) -> int:
    ports = load_ports()
    if ports is None or component_pid("router") is None:
        raise StackError("the stack is not up: run dev/stack up")
    configure_moto(ports)
    for arn in deploy_state_machines(ports):
        print(arn)
    return 0


def cmd_env(_args: argparse.Namespace) -> int:
    if component_pid("router") is None or not ENV_FILE.exists():
        raise StackError("the stack is not up: run dev/stack up")
    sys.stdout.write(ENV_FILE.read_text())
    return 0


def cmd_status(_args: argparse.Namespace) -> int:
    ports = load_ports() or {}
    any_up = False
    for name in COMPONENTS:
        pid = component_pid(name)
        port = ports.get(name, "-")
        if pid is None:
            state = "stopped"
        else:
            any_up = True
            if name == "lambda":
                answering = isinstance(port, int) and port_open(port)
            else:
                answering = isinstance(port, int) and moto_answers(port)
            state = f"running pid {pid}, " + ("answering" if answering else "NOT answering")
        print(f"{name:7} {HOST}:{port:<6} {state:40} log {log_file(name)}")
    if any_up and ENV_FILE.exists():
        env = read_env_file()
        print(f"endpoint AWS_ENDPOINT_URL={env.get('AWS_ENDPOINT_URL')}")
        print(f"demo instance {env.get('AMIFORGE_DEMO_INSTANCE_ID')}")
    return 0 if any_up else 3


def cmd_down(_args: argparse.Namespace) -> int:
    for name in reversed(COMPONENTS):
        if stop_component(name):
            print(f"stopped {name}", file=sys.stderr)
    for path in (ENV_FILE, LAMBDA_ENV_FILE, PORTS_FILE):
        path.unlink(missing_ok=True)
    return 0


def use_venv_python() -> None:
    """Re-run under the virtualenv's python when boto3 is not importable here (for
    `python3 dev/stack.py deploy` from a plain shell)."""
    try:
        import boto3  # noqa: F401
    except ImportError:
        venv_python = VENV / "bin" / "python"
        if venv_python.exists() and Path(sys.executable) != venv_python:
            os.execv(
                str(venv_python), [str(venv_python), str(Path(__file__).resolve())] + sys.argv[1:]
            )
        raise StackError(f"boto3 is missing: run dev/stack up (it creates {VENV})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dev/stack", description="amiforge local stack (moto, router, cargo lambda watch)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start what is not running, provision, print env")
    up.add_argument("--no-lambda", action="store_true", help="skip cargo lambda watch")
    up.add_argument(
        "--no-reload",
        action="store_true",
        help="cargo lambda watch --ignore-changes: do not rebuild functions on edits",
    )
    up.set_defaults(func=cmd_up)
    sub.add_parser("deploy", help="(re)deploy statemachine/*.asl.json").set_defaults(
        func=cmd_deploy
    )
    sub.add_parser("env", help="print the export lines").set_defaults(func=cmd_env)
    sub.add_parser("status", help="what runs where").set_defaults(func=cmd_status)
    sub.add_parser("down", help="stop the stack").set_defaults(func=cmd_down)
    args = parser.parse_args(argv)
    try:
        if args.command in ("up", "deploy"):
            use_venv_python()
        return args.func(args)
    except StackError as err:
        print(f"dev/stack: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
