//! IPP responses from CUPS: the `ipp` crate's parser and pinwarden's readings of a reply
//! (printer state and reasons, held jobs, job-operation answers).

pub fn run(data: &[u8]) {
    pinwarden::fuzzing::ipp_response(data);
}
