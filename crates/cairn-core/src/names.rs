//! PostHog's reserved event and property names, spelled once. Code that
//! gives one of these a meaning (ingestion, flags, insights, the SDK) names it
//! through this module; demo data and tests may spell what a client sends.

/// Events with a meaning for persons and groups.
pub mod event {
    pub const IDENTIFY: &str = "$identify";
    pub const CREATE_ALIAS: &str = "$create_alias";
    pub const MERGE_DANGEROUSLY: &str = "$merge_dangerously";
    pub const GROUP_IDENTIFY: &str = "$groupidentify";
    pub const PAGEVIEW: &str = "$pageview";
    pub const PAGELEAVE: &str = "$pageleave";
    pub const SCREEN: &str = "$screen";
    pub const FEATURE_FLAG_CALLED: &str = "$feature_flag_called";
    /// Dropped at capture, as PostHog does.
    pub const PERFORMANCE_EVENT: &str = "$performance_event";
    /// Events that never change person properties.
    pub const EXCEPTION: &str = "$exception";
    pub const HEATMAP: &str = "$$heatmap";
}

/// Event properties with a meaning.
pub mod property {
    /// Person properties to set, overwriting.
    pub const SET: &str = "$set";
    /// Person properties to set only where absent.
    pub const SET_ONCE: &str = "$set_once";
    /// Person property names to remove.
    pub const UNSET: &str = "$unset";
    /// Group type → group key, for every group the event belongs to.
    pub const GROUPS: &str = "$groups";
    /// `$groupidentify`: the group's type, key and properties to set.
    pub const GROUP_TYPE: &str = "$group_type";
    pub const GROUP_KEY: &str = "$group_key";
    pub const GROUP_SET: &str = "$group_set";
    /// `$identify`: the anonymous id being identified.
    pub const ANON_DISTINCT_ID: &str = "$anon_distinct_id";
    /// `false` turns off person processing for the event.
    pub const PROCESS_PERSON_PROFILE: &str = "$process_person_profile";
    pub const DISTINCT_ID: &str = "$distinct_id";
    pub const SESSION_ID: &str = "$session_id";
    pub const CURRENT_URL: &str = "$current_url";
    pub const SCREEN_NAME: &str = "$screen_name";
    pub const LIB: &str = "$lib";
    pub const LIB_VERSION: &str = "$lib_version";
    pub const TOKEN: &str = "$token";
    pub const FEATURE_FLAG: &str = "$feature_flag";
    pub const FEATURE_FLAG_RESPONSE: &str = "$feature_flag_response";
    pub const CREATOR_EVENT_UUID: &str = "$creator_event_uuid";
    /// Must be a boolean, else capture refuses the event.
    pub const COOKIELESS_MODE: &str = "$cookieless_mode";
    /// `true`: the event's time is not corrected by the batch's `sent_at`.
    pub const IGNORE_SENT_AT: &str = "$ignore_sent_at";
    /// Sent by server SDKs, whose `$os` is the server's.
    pub const IS_SERVER: &str = "$is_server";
    pub const DEVICE_ID: &str = "$device_id";
}
