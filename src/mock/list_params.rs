//! The List Workflow Runs query, checked per version: filters, sort, page size and the
//! page token as sent (decoded by the handler). Every refusal names the parameter.

use std::collections::HashMap;

use super::refusal::{Classify, Invalid, Refusal, invalid};
use crate::api::{ApiVersion, RunStatus};

/// A parsed List Workflow Runs query, before the page token is decoded.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub status: Option<RunStatus>,
    pub workflow_id: Option<String>,
    pub batch_id: Option<String>,
    pub file_name_contains: Option<String>,
    pub sort_by_created: bool,
    pub ascending: bool,
    pub next_page_token: Option<String>,
    pub max_page_size: usize,
}

pub fn list(version: ApiVersion, q: &HashMap<String, String>) -> Result<ListParams, Refusal> {
    let mut p = ListParams {
        max_page_size: 10,
        ..Default::default()
    };
    for (k, v) in q {
        match k.as_str() {
            "status" => {
                // 2024-12-23 has no cancellation statuses (§0).
                let legacy = version == ApiVersion::V2024_12_23;
                p.status = Some(
                    RunStatus::parse(v)
                        .filter(|st| {
                            !(legacy
                                && matches!(st, RunStatus::Cancelled | RunStatus::Cancelling))
                        })
                        .ok_or_else(|| {
                            invalid(if legacy {
                                format!("`status` must be one of PENDING, PROCESSING, NEEDS_REVIEW, REJECTED, PROCESSED, FAILED; got `{v}`")
                            } else {
                                format!("`status` must be one of PENDING, PROCESSING, NEEDS_REVIEW, REJECTED, PROCESSED, FAILED, CANCELLED, CANCELLING; got `{v}`")
                            })
                        })?,
                )
            }
            "workflowId" => p.workflow_id = Some(v.clone()),
            "batchId" => p.batch_id = Some(v.clone()),
            "fileNameContains" if version != ApiVersion::V2024_12_23 => {
                p.file_name_contains = Some(v.clone())
            }
            "sortBy" => {
                p.sort_by_created = match v.as_str() {
                    "createdAt" => true,
                    "updatedAt" => false,
                    _ => {
                        return Err(invalid(format!(
                            "`sortBy` must be `updatedAt` or `createdAt`; got `{v}`"
                        ))
                        .into());
                    }
                }
            }
            "sortDir" => {
                p.ascending = match v.as_str() {
                    "asc" => true,
                    "desc" => false,
                    _ => {
                        return Err(invalid(format!(
                            "`sortDir` must be `asc` or `desc`; got `{v}`"
                        ))
                        .into());
                    }
                }
            }
            "nextPageToken" => p.next_page_token = Some(v.clone()),
            "maxPageSize" => {
                p.max_page_size = match v.parse::<usize>() {
                    Ok(n @ 1..=1000) => n,
                    _ => {
                        return Err(invalid(format!(
                            "`maxPageSize` must be an integer from 1 to 1000; got `{v}`"
                        )))
                        .kind(Invalid::PageSize);
                    }
                }
            }
            // Unknown parameters are ignored, as most HTTP APIs do.
            _ => {}
        }
    }
    Ok(p)
}
