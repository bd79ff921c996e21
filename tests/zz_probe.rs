use mailbot::dissect::{Options, dissect_bytes};
#[test]
fn probe() {
    let n = 65536 * 2;
    let params: String = (0..n).map(|i| format!("; filename*{i}*=a")).collect();
    let raw = format!("Content-Disposition: attachment{params}\n\ndata").into_bytes();
    for _ in 0..5 {
        let _ = dissect_bytes(&raw, &Options::all());
    }
}
