//! Property tests: encode → parse round trips for every command and agent line, fragmentation
//! invariance of the decoder, and totality of the parsers on arbitrary bytes.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use wasmbed_agent_proto::*;

/// Identifier characters (the identifier rule, src/ident.rs): printable ASCII except space and
/// `" ' , : = \`.
const IDENT: &str = "[!#-&(-+\\-.-9;<>-\\[\\]-~]";

fn ident(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("{IDENT}{{1,{max}}}")).unwrap()
}

fn module_id() -> impl Strategy<Value = ModuleId> {
    ident(MODULE_ID_MAX).prop_map(|s| ModuleId::new(s).unwrap())
}

fn func() -> impl Strategy<Value = FuncName> {
    ident(FUNC_MAX).prop_map(|s| FuncName::new(s).unwrap())
}

/// A bare field value as agents print them (no space, not starting with a quote).
fn word() -> impl Strategy<Value = String> {
    ident(20)
}

/// Free text for quoted fields: anything, escaping makes it safe.
fn text() -> impl Strategy<Value = String> {
    any::<String>()
}

fn code<T: 'static + std::fmt::Debug>(from: fn(&str) -> T) -> impl Strategy<Value = T> {
    proptest::string::string_regex("[A-Z_]{1,16}")
        .unwrap()
        .prop_map(move |s| from(&s))
}

fn command() -> impl Strategy<Value = Command> {
    let load = (
        module_id(),
        any::<u32>(),
        any::<u32>(),
        any::<[bool; 4]>(),
        option::of(module_id()),
        option::of(any::<u32>()),
    )
        .prop_map(
            |(module_id, size, crc, [chunked, replace, resume, framed], victim, deflated_size)| {
                Command::Load(Load {
                    module_id,
                    size,
                    crc32: Crc32(crc),
                    chunked,
                    // On the wire a victim implies replace=1.
                    replace: replace || victim.is_some(),
                    replace_victim: victim,
                    resume,
                    framed,
                    deflated_size,
                })
            },
        );
    let chunk = (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(offset, size, crc)| {
        Command::Chunk(Chunk {
            offset,
            size,
            crc32: Crc32(crc),
        })
    });
    let start = (
        module_id(),
        option::of(func()),
        vec(any::<i32>(), 0..=ARGS_MAX),
    )
        .prop_map(|(module_id, func, args)| {
            Command::Start(Start {
                module_id,
                func,
                args: Args::new(args).unwrap(),
            })
        });
    prop_oneof![
        load,
        chunk,
        start,
        module_id().prop_map(|m| Command::Stop(ModuleRef { module_id: m })),
        module_id().prop_map(|m| Command::Unload(ModuleRef { module_id: m })),
        Just(Command::Status),
        Just(Command::Info),
        any::<[u8; 32]>().prop_map(|n| Command::Ident(identity::Nonce(n))),
        (
            module_id(),
            any::<u32>(),
            any::<[u8; 8]>(),
            vec(any::<u8>(), 64)
        )
            .prop_map(|(module_id, ver, key, sig)| Command::Sig(Sig {
                module_id,
                ver,
                key: KeyId(key),
                sig: Signature(sig.try_into().unwrap()),
            })),
        (module_id(), option::of(any::<u32>()))
            .prop_map(|(module_id, ver)| Command::MinVer(MinVer { module_id, ver })),
    ]
}

fn pool_stats() -> impl Strategy<Value = PoolStats> {
    any::<[u32; 4]>().prop_map(|[total, free, used, highmark]| PoolStats {
        total,
        free,
        used,
        highmark,
    })
}

fn status_ok() -> impl Strategy<Value = StatusOk> {
    let entry = (
        ident(MODULE_ID_MAX),
        prop::sample::select(vec![SlotState::Loaded, SlotState::Running]),
        any::<u32>(),
        any::<u32>(),
        option::of(any::<u32>()),
    )
        .prop_map(
            |(module_id, state, wasm_size, stack_free, crc)| ModuleEntry {
                module_id,
                state,
                wasm_size,
                stack_free,
                crc32: crc.map(Crc32),
            },
        );
    let modules = prop_oneof![
        Just(Modules::None),
        Just(Modules::Text("wasm_module(loaded)".into())),
        vec(entry, 1..3).prop_map(Modules::Slots),
    ];
    let pool = option::of(prop_oneof![
        pool_stats().prop_map(Pool::Heap),
        pool_stats().prop_map(Pool::Wamr),
        Just(Pool::NotAvailable),
    ]);
    let low = option::of(vec(
        ident(MODULE_ID_MAX).prop_filter("none is the empty list", |s| s != "none"),
        0..3,
    ));
    let runner = option::of(prop::sample::select(vec![
        RunnerState::Idle,
        RunnerState::Running,
    ]));
    (
        modules,
        runner,
        low,
        pool,
        option::of(any::<u32>()),
        option::of(any::<u32>()),
    )
        .prop_map(
            |(modules, runner, low_stack, pool, rx_overflow, rx_too_long)| StatusOk {
                modules,
                runner,
                low_stack,
                pool,
                rx_overflow,
                rx_too_long,
            },
        )
}

fn info_ok() -> impl Strategy<Value = InfoOk> {
    let native = ("[a-z_]{1,12}", "\\((i|I|f|F|\\*|~)*\\)(i|I|f|F)?")
        .prop_map(|(name, signature)| Native { name, signature });
    let strings = [(); 10].map(|_| option::of(word()));
    let numbers = [(); 8].map(|_| option::of(any::<u32>()));
    let stop = option::of(code(StopMode::from_wire));
    let identity = option::of(word());
    (
        any::<u32>(),
        strings,
        numbers,
        stop,
        vec(native, 0..4),
        identity,
    )
        .prop_map(
            |(
                proto,
                [board, fw, wamr, aot_arch, aot_cpu, aot_abi, aot_features, aot_bounds_checks, sig, sig_keys],
                [aot_version, slots, max_module, pool_total, pool_free, chunk_max, line_max, baud],
                stop,
                natives,
                identity,
            )| InfoOk {
                proto,
                board,
                fw,
                wamr,
                aot_arch,
                aot_cpu,
                aot_abi,
                aot_version,
                aot_features,
                aot_bounds_checks,
                slots,
                max_module,
                pool_total,
                pool_free,
                chunk_max,
                line_max,
                baud,
                stop,
                baud_rates: Vec::new(),
                compress: Vec::new(),
                natives,
                identity,
                sig,
                sig_keys,
            },
        )
}

fn run_result() -> impl Strategy<Value = RunResult> {
    (
        code(ResultStatus::from_wire),
        option::of(word()),
        option::of(word()),
        option::of(any::<u32>()),
        option::of(text()),
        any::<bool>(),
        option::of(word()),
    )
        .prop_map(
            |(status, module_id, func, ret_i32, msg, forced, name)| RunResult {
                status,
                module_id,
                func,
                ret_i32,
                msg,
                forced,
                name,
            },
        )
}

fn agent_line() -> impl Strategy<Value = AgentLine> {
    prop_oneof![
        (word(), word(), word(), word(), option::of(any::<u32>())).prop_map(
            |(device_id, rtos, runtime, fw_version, proto)| AgentLine::Hello(Hello {
                device_id,
                rtos,
                runtime,
                fw_version,
                proto
            })
        ),
        (
            option::of(word()),
            any::<u32>(),
            word(),
            option::of(any::<u32>()),
            option::of(any::<u32>()),
            any::<bool>(),
            option::of(any::<u32>())
        )
            .prop_map(
                |(module_id, size, crc32, chunk, offset, framed, deflated_size)| {
                    AgentLine::LoadReady(LoadReady {
                        module_id,
                        size,
                        crc32,
                        chunk,
                        offset,
                        framed,
                        deflated_size,
                    })
                }
            ),
        (option::of(word()), option::of(word())).prop_map(|(warn, replace_victim)| {
            AgentLine::LoadOk(LoadOk {
                warn,
                replace_victim,
            })
        }),
        (
            code(LoadErrCode::from_wire),
            option::of(text()),
            option::of(any::<u32>())
        )
            .prop_map(|(code, msg, offset)| AgentLine::LoadErr(LoadErr {
                code,
                msg,
                offset
            })),
        any::<u32>().prop_map(|offset| AgentLine::ChunkOk(ChunkOk { offset })),
        (code(ChunkErrCode::from_wire), any::<u32>())
            .prop_map(|(code, offset)| AgentLine::ChunkErr(ChunkErr { code, offset })),
        Just(AgentLine::StartOk),
        run_result().prop_map(AgentLine::Result),
        code(StopStatus::from_wire).prop_map(|status| AgentLine::StopOk(StopOk { status })),
        status_ok().prop_map(AgentLine::StatusOk),
        info_ok().prop_map(|i| AgentLine::InfoOk(Box::new(i))),
        word().prop_map(|module_id| AgentLine::UnloadOk(UnloadOk { module_id })),
        (
            code(UnloadErrCode::from_wire),
            option::of(word()),
            option::of(text())
        )
            .prop_map(|(code, module_id, msg)| AgentLine::UnloadErr(UnloadErr {
                code,
                module_id,
                msg
            })),
        (word(), word()).prop_map(|(key, sig)| AgentLine::IdentOk(IdentOk { key, sig })),
        (code(IdentErrCode::from_wire), option::of(text()))
            .prop_map(|(code, msg)| AgentLine::IdentErr(IdentErr { code, msg })),
        (word(), text(), any::<bool>(), option::of(any::<u32>())).prop_map(
            |(module_id, msg, truncated, dropped)| AgentLine::Log(Log {
                module_id,
                msg,
                truncated,
                dropped
            })
        ),
        (
            code(ErrorCode::from_wire),
            option::of(any::<u32>()),
            option::of(text())
        )
            .prop_map(|(code, dropped, msg)| AgentLine::Error(ErrorLine {
                code,
                dropped,
                msg
            })),
        "[a-z\\[][ -~]{0,40}".prop_map(AgentLine::Other),
    ]
}

/// Splits `bytes` at the given cut points (taken modulo the length).
fn fragments(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for p in points.into_iter().chain([bytes.len()]) {
        out.push(bytes[last..p].to_vec());
        last = p;
    }
    out
}

fn decode_all(parts: &[Vec<u8>]) -> Vec<Item> {
    let mut d = Decoder::new();
    for p in parts {
        d.feed(p);
    }
    d.finish();
    d.collect()
}

/// Bytes that look like a real stream: protocol lines, console text, noise, terminators, IACs.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        agent_line().prop_map(|l| l.to_wire()),
        vec(any::<u8>(), 0..40),
        Just(b"\r\n".to_vec()),
        Just(vec![0xff, 0xfd, 0x1f]),
        Just(vec![0xff, 0xff]),
        Just(vec![0u8]),
        Just(vec![b'x'; 1100]),
    ];
    (any::<bool>(), vec(piece, 0..12)).prop_map(|(telnet, pieces)| {
        let mut out = Vec::new();
        if telnet {
            out.extend_from_slice(&[
                0xff, 0xfd, 0x00, 0xff, 0xfb, 0x01, 0xff, 0xfb, 0x03, 0xff, 0xfc, 0x22,
            ]);
        }
        for p in pieces {
            out.extend(p);
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn command_round_trip(c in command()) {
        let wire = c.to_wire();
        prop_assert!(wire.len() <= COMMAND_LINE_MAX + 1, "{} bytes", wire.len());
        prop_assert_eq!(parse_command(&wire), Ok(c));
    }

    #[test]
    fn agent_line_round_trip(l in agent_line()) {
        let text = l.to_string();
        prop_assert!(!text.contains(['\n', '\r', '\0']), "{:?}", text);
        prop_assert_eq!(parse_agent_line(&text), l);
    }

    #[test]
    fn agent_lines_survive_the_decoder(lines in vec(agent_line(), 1..6), cuts in vec(any::<usize>(), 0..20)) {
        let bytes: Vec<u8> = lines.iter().flat_map(|l| l.to_wire()).collect();
        let decoded: Vec<AgentLine> = decode_all(&fragments(&bytes, &cuts))
            .into_iter()
            .map(|i| match i {
                Item::Line(l) => l.msg,
                other => panic!("{other:?}"),
            })
            .collect();
        prop_assert_eq!(decoded, lines);
    }

    #[test]
    fn any_fragmentation_decodes_the_same(bytes in stream(), cuts in vec(any::<usize>(), 0..64)) {
        let whole = decode_all(std::slice::from_ref(&bytes));
        prop_assert_eq!(decode_all(&fragments(&bytes, &cuts)), whole.clone());
        let one_by_one: Vec<Vec<u8>> = bytes.iter().map(|b| vec![*b]).collect();
        prop_assert_eq!(decode_all(&one_by_one), whole);
    }

    #[test]
    fn parsers_are_total(bytes in vec(any::<u8>(), 0..600)) {
        let _ = parse_command(&bytes);
        let _ = parse_agent_line(&String::from_utf8_lossy(&bytes));
        for item in decode_all(&[bytes]) {
            if let Item::Line(l) = item {
                prop_assert!(l.raw.len() <= AGENT_LINE_MAX * 3);
                prop_assert!(!l.raw.contains(['\n', '\r', '\0']));
            }
        }
    }
}
