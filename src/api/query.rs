//! Query strings: `?page=&per_page=` (§1) and a few named filters. Unknown
//! parameters are ignored, as caches and browsers add their own.

use std::collections::HashMap;
use std::convert::Infallible;

use utoipa::IntoParams;
use warp::Filter;

use crate::error::{ApiError, Details};
use crate::store::Paging;

pub const DEFAULT_PER_PAGE: u32 = 20;
pub const MAX_PER_PAGE: u32 = 100;

#[derive(Clone, Debug, Default)]
pub struct Query(HashMap<String, String>);

/// `?page=&per_page=` in the API document, as [`Query::paging`] reads them.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParams {
    /// The page to show, from 1.
    #[param(minimum = 1, maximum = 4_294_967_295_i64)]
    page: Option<i64>,
    /// Items per page.
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<i64>,
}

pub fn query() -> impl Filter<Extract = (Query,), Error = Infallible> + Clone {
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .map(|raw: String| Query::parse(&raw))
}

impl Query {
    pub fn parse(raw: &str) -> Query {
        Query(
            form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The requested page, or `422 validation_failed` naming the bad
    /// parameter.
    pub fn paging(&self) -> Result<Paging, ApiError> {
        let mut problems = Details::new();
        let mut number =
            |key: &str, default: u32, range: std::ops::RangeInclusive<u32>, problem: &str| {
                match self.get(key) {
                    None => default,
                    Some(text) => match text.parse::<u32>() {
                        Ok(n) if range.contains(&n) => n,
                        _ => {
                            problems.insert(key.to_owned(), problem.to_owned());
                            default
                        }
                    },
                }
            };
        let page = number("page", 1, 1..=u32::MAX, "must be a whole number from 1");
        let per_page = number(
            "per_page",
            DEFAULT_PER_PAGE,
            1..=MAX_PER_PAGE,
            "must be a whole number from 1 to 100",
        );
        if problems.is_empty() {
            Ok(Paging { page, per_page })
        } else {
            Err(ApiError::validation(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_defaults_and_bounds() {
        assert_eq!(
            Query::parse("").paging().unwrap(),
            Paging {
                page: 1,
                per_page: 20
            }
        );
        assert_eq!(
            Query::parse("page=3&per_page=100&x=y").paging().unwrap(),
            Paging {
                page: 3,
                per_page: 100
            }
        );
        for bad in [
            "page=0",
            "per_page=0",
            "per_page=101",
            "page=-1",
            "page=abc",
            "per_page=2.5",
        ] {
            assert!(Query::parse(bad).paging().is_err(), "{bad}");
        }
        assert_eq!(Query::parse("state=a%20b").get("state"), Some("a b"));
    }
}
