//! The model's sequences read from a fuzzer's bytes (`fuzz/fuzz_targets/client_model.rs`):
//! the configuration and the operations drawn from the same ranges, with the same weights,
//! as the proptest strategies above, with `arbitrary` reading the choices from the bytes so
//! that libFuzzer's coverage guides them. Run by the model's own runner, checked against its
//! invariants after every step.

use arbitrary::{Result, Unstructured};

use super::{Api, Conf, Op, run};
use crate::tests::sim::Network;

/// The most operations one input runs, as the proptest sequences (1 to 149).
const MAX_OPS: usize = 150;

/// Runs the sequence `data` encodes: the first invariant it breaks. Bytes that run out end
/// the sequence. With `MODEL_PRINT` set, prints the configuration and the operations first,
/// to be made a `regression_*` test.
pub(crate) fn model(data: &[u8]) -> std::result::Result<(), String> {
    let mut u = Unstructured::new(data);
    let Ok(conf) = conf(&mut u) else {
        return Ok(());
    };
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS && !u.is_empty() {
        match op(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    if std::env::var_os("MODEL_PRINT").is_some() {
        eprintln!("{conf:?}\n{ops:?}");
    }
    run(&conf, &ops)
}

/// One of `choices` by weight.
fn weighted(u: &mut Unstructured, weights: &[u32]) -> Result<usize> {
    let total: u32 = weights.iter().sum();
    let mut pick = u.int_in_range(0..=total - 1)?;
    for (index, weight) in weights.iter().enumerate() {
        if pick < *weight {
            return Ok(index);
        }
        pick -= weight;
    }
    unreachable!("the pick is below the total")
}

fn close_code(u: &mut Unstructured) -> Result<u16> {
    Ok(match weighted(u, &[4, 1, 1, 1, 2, 1, 1, 1, 1])? {
        0 => 1000,
        1 => 1001,
        2 => 1005,
        3 => 2999,
        4 => u.int_in_range(3000..=4999)?,
        5 => 4001,
        6 => 4002,
        7 => 5000,
        _ => 0,
    })
}

fn reason_len(u: &mut Unstructured) -> Result<usize> {
    Ok(*u.choose(&[0, 3, 123, 124])?)
}

fn api(u: &mut Unstructured) -> Result<Api> {
    Ok(match u.int_in_range(0..=3)? {
        0 => Api::Send,
        1 => Api::Close,
        2 => Api::CloseWith(close_code(u)?, reason_len(u)?),
        _ => Api::ReconnectNow,
    })
}

fn op(u: &mut Unstructured) -> Result<Op> {
    let weights = [
        8, 2, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 3, 8, 8, 3, 3, 1, 2, 1, 10, 3, 1, 1, 1,
    ];
    Ok(match weighted(u, &weights)? {
        0 => Op::Send,
        1 => Op::SendAsync,
        2 => Op::Close,
        3 => Op::CloseWith(close_code(u)?, reason_len(u)?),
        4 => Op::ReconnectNow,
        5 => Op::CloneHandle,
        6 => Op::DropHandle(u.int_in_range(0..=2)?),
        7 => Op::Events,
        8 => Op::Messages,
        9 => Op::DropStream(u.int_in_range(0..=2)?),
        10 => Op::ReadStreams,
        11 => Op::Closed,
        12 => Op::SinkClose,
        13 => Op::Arm(api(u)?),
        14 => Op::Open(u.arbitrary()?),
        15 => Op::Receive(u.int_in_range(0..=2)?),
        16 => Op::Fail(u.arbitrary()?),
        17 => Op::RemoteClose(close_code(u)?, u.arbitrary()?),
        18 => Op::HalfClose,
        19 => Op::Flush,
        20 => Op::Refuse(u.arbitrary()?),
        21 => Op::Advance(u.int_in_range(1..=59)?),
        22 => Op::Advance(u.int_in_range(100..=5_999)?),
        23 => Op::Network(Network::Online),
        24 => Op::Network(Network::Offline),
        _ => Op::Network(Network::Visible),
    })
}

/// `Some` of what `value` reads, with probability `chance` in 4.
fn maybe<T>(
    u: &mut Unstructured,
    chance: u8,
    value: impl FnOnce(&mut Unstructured) -> Result<T>,
) -> Result<Option<T>> {
    Ok(if u.int_in_range(0..=3)? < chance {
        Some(value(u)?)
    } else {
        None
    })
}

fn conf(u: &mut Unstructured) -> Result<Conf> {
    // Backoff of at least 10 ms, as in the strategy: with none, an attempt that fails at
    // once is retried at once, forever, at the same instant.
    let reconnect = maybe(u, 3, |u| {
        Ok((
            u.int_in_range(10..=399)?,
            u.int_in_range(10..=2_999)?,
            maybe(u, 2, |u| u.int_in_range(0..=4))?,
            u.int_in_range(0..=1_999)?,
            u.arbitrary()?,
            u.int_in_range(0..=4)?,
            u.arbitrary()?,
        ))
    })?;
    let heartbeat = maybe(u, 2, |u| {
        Ok((
            u.int_in_range(1..=399)?,
            u.int_in_range(0..=599)?,
            u.arbitrary()?,
        ))
    })?;
    Ok(Conf {
        reconnect,
        heartbeat,
        connect_timeout: maybe(u, 2, |u| u.int_in_range(0..=799))?,
        decides: u.arbitrary()?,
        provider: maybe(u, 2, |u| maybe(u, 2, |u| u.int_in_range(0..=299)))?,
        receive_limit: maybe(u, 2, |u| u.int_in_range(0..=3))?,
        protocols: u.arbitrary()?,
        high_water_mark: maybe(u, 2, |u| u.int_in_range(0..=11))?,
    })
}
